"""The demo's world and data: held-out charts never leak into training, the records are valid virgo records."""

import random
import re

import pytest

from virgo.demo.data import QUICK, build_experiment_data
from virgo.demo.world import (
    GIVEN_STYLES,
    LETTERS,
    NUMBER_WORDS,
    Question,
    caption,
    paraphrase,
    random_question,
    read_caption,
    split_tuples,
)
from virgo.records import LongThoughtExample, Problem
from virgo.records.jsonl import read_records
from virgo.thought import Status, parse_response

_NUMBER = r"(\d+|" + "|".join(NUMBER_WORDS) + ")"
_STYLE_RES = [re.compile(re.escape(s).replace(r"\{l\}", "([A-D])").replace(r"\{v\}", _NUMBER)) for s in GIVEN_STYLES]


def _number(said: str) -> int:
    return NUMBER_WORDS.index(said) if said in NUMBER_WORDS else int(said)


def _worded_values(text: str) -> tuple[int, ...]:
    """The four values a text problem states, whichever style it uses (exactly one style per problem)."""
    styles = [found for r in _STYLE_RES if (found := dict(r.findall(text)))]
    assert len(styles) == 1, text
    return tuple(_number(styles[0][c]) for c in LETTERS)


def test_caption_paraphrase_and_thought_agree():
    v = (3, 7, 0, 9)
    assert read_caption(caption(v)) == v
    for seed in range(20):  # every style states all four values, in words, never as the restatement's "C=5"
        worded = paraphrase(v, random.Random(seed))
        assert _worded_values(worded) == v and "=" not in worded
    styles = {next(i for i, r in enumerate(_STYLE_RES) if r.search(paraphrase(v, random.Random(s))))
              for s in range(50)}
    assert styles == set(range(len(GIVEN_STYLES)))  # the text data really varies its surface form
    spoken = [not re.search(r"\d", paraphrase(v, random.Random(s))) for s in range(50)]
    assert 10 < sum(spoken) < 40  # numbers as words about half the time, so no digit in the prompt to copy
    q = Question("hard", (0, 2, 2, 3))
    assert q.text == "What is A + C + C + D?" and q.answer(v) == 12
    assert "We need A + C + C + D. A=3, C=0, C=0, D=9. 3+0=3. 3+0=3. 3+9=12." in q.thought(v)
    assert q.solution(v).endswith("\\boxed{12}.")
    rng = random.Random(0)
    assert {len(random_question("easy", rng).bars) for _ in range(20)} == {2}
    hard = [random_question("hard", rng).bars for _ in range(200)]
    assert {len(b) for b in hard} == {4} and any(len(set(b)) < 4 for b in hard)  # named with replacement


def test_held_out_charts_never_reach_training(tmp_path):
    train, held = split_tuples()
    assert not set(train) & set(held) and len(held) == 2000
    files = build_experiment_data(tmp_path, QUICK, seed=3)
    held = set(held)
    for ex in read_records(files["text_long_thought"], LongThoughtExample):
        assert _worded_values(ex.question) not in held  # text twins included
        assert parse_response(ex.response).status == Status.COMPLETE
    for p in read_records(files["sd_problems"], Problem):
        assert tuple(p.meta["values"]) not in held
    for name in ("visual_easy", "visual_hard", "text"):
        problems = read_records(files[f"eval_{name}"], Problem)
        assert len(problems) == QUICK.eval_per_set
        assert all(tuple(p.meta["values"]) in held for p in problems)
        assert all(p.images and p.images[0].endswith(".png") for p in problems) == (name != "text")
    oracle = read_records(files["oracle_visual"], LongThoughtExample)
    assert len(oracle) == QUICK.sd_problems and all(o.images for o in oracle)


def test_shipped_base_is_verified_and_tampering_is_named(tmp_path):
    import shutil

    from virgo.demo.base import SHIPPED, verify

    if not (SHIPPED / "SHA256SUMS").exists():
        pytest.skip("no shipped base checkpoint")
    assert verify(SHIPPED) == SHIPPED
    copy = tmp_path / "base"
    shutil.copytree(SHIPPED, copy)
    with open(copy / "config.json", "a") as f:
        f.write(" ")
    with pytest.raises(ValueError, match="config.json: sha256 differs"):
        verify(copy)
