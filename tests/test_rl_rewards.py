"""The RL rewards against the grader's case tables: the accuracy reward is 1 exactly when `virgo grade` says correct
(truncated and unclosed responses included), the format and length terms, and the metrics they log.

Completions go in as token ids, as GRPOTrainer passes them: a response that stopped on its own ends with the
end-of-turn id, one cut at the token limit does not. The tiny model's tokenizer holds the thought markers as special
tokens, so these tests also show the rewards read them (TRL's own decoded text would have lost them).
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict

import pytest
import test_grade_cases as cases
import test_grade_verdicts as verdicts

from virgo.grade import GradeConfig, get_profile, grade_text
from virgo.records import Problem
from virgo.rl.rewards import Rewards, decode_completion, format_ok, length_penalty
from virgo.thought import FORMATS, render_response

THOUGHT = verdicts.THOUGHT
P = verdicts.P  # "What is 6 * 7?", gold 42


def _rows_of(test) -> list[tuple]:
    """The parameter rows of a parametrized grader test (so this file cannot drift from the grader's table)."""
    return next(m for m in test.pytestmark if m.name == "parametrize").args[1]


@pytest.fixture(scope="module")
def tokenizer():
    from virgo.modeling.load import load_processor
    from virgo.train.models import resolve_model

    return load_processor(resolve_model("tiny:xs")).tokenizer


def _ids(tokenizer, text: str, finish_reason: str) -> list[int]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids + [tokenizer.eos_token_id] if finish_reason == "stop" else ids


def _rewards(problems, tokenizer, workers: int = 1, **kw) -> Rewards:
    stop = (tokenizer.eos_token_id, tokenizer.pad_token_id)
    return Rewards(problems, tokenizer, stop, GradeConfig(workers=workers), weights={"accuracy": 1.0, "format": 1.0,
                                                                                     "length": 1.0}, **kw)


def _call(fn, problems_idx, ids):
    logged = defaultdict(list)
    out = fn(prompts=[None] * len(ids), completions=[None] * len(ids), completion_ids=ids, index=problems_idx,
             log_metric=lambda name, value: logged[name].append(value))
    return out, logged


@pytest.mark.parametrize("workers", [1, 0], ids=["pool", "in-process"])
def test_accuracy_reward_follows_every_verdict_row(tokenizer, workers):
    rows = _rows_of(verdicts.test_verdicts)
    ids = [_ids(tokenizer, text, fr) for text, fr, _, _ in rows]
    with _rewards([P], tokenizer, workers=workers) as r:
        acc, logged = _call(r.accuracy, [0] * len(rows), ids)
    expected = [1.0 if verdict == "correct" else 0.0 for _, _, verdict, _ in rows]
    assert acc == expected
    assert 0 < sum(acc) < len(acc)  # the table has both kinds
    assert logged["accuracy"] == [pytest.approx(sum(expected) / len(expected))]
    truncated = sum(v == "truncated" for _, _, v, _ in rows) / len(rows)
    assert logged["truncated"] == [pytest.approx(truncated)]


def test_truncated_and_unclosed_completions_earn_nothing(tokenizer):
    good = render_response(THOUGHT, r"So the product is \boxed{42}.")
    texts = [
        (good, "stop", 1.0),
        (good, "length", 0.0),  # cut at the token limit, even with the right box in it
        (render_response(THOUGHT, r"So the product is \boxed{4"), "stop", 0.0),  # cut inside its box
        ("<|begin_of_thought|>\n\n" + THOUGHT + r" So \boxed{42}", "stop", 0.0),  # the thought never closed
        ("<|begin_of_thought|>\n\n" + THOUGHT + "\n\n<|end_of_thought|>\n\n<|begin_of_solution|>So it is 42", "stop",
         0.0),  # the solution never closed, no box
    ]
    ids = [_ids(tokenizer, t, fr) for t, fr, _ in texts]
    # The same token ids cut one token short of their end-of-turn: a completion that stopped at the limit.
    ids.append(ids[0][:-2])
    with _rewards([P], tokenizer) as r:
        acc, _ = _call(r.accuracy, [0] * len(ids), ids)
        fmt, _ = _call(r.format, [0] * len(ids), ids)
    assert acc == [x for _, _, x in texts] + [0.0]
    assert fmt == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize(("text", "finish_reason", "ok"), [
    (render_response(THOUGHT, r"So the product is \boxed{42}."), "stop", True),
    (render_response(THOUGHT, r"So the product is \boxed{43}."), "stop", True),  # format, not correctness
    (render_response(THOUGHT, r"\boxed{42}"), "length", False),
    (render_response(THOUGHT, r"\boxed{41} or \boxed{42}"), "stop", False),  # two final answers
    (render_response(THOUGHT, "The product is 42."), "stop", False),  # no final answer
    (render_response(THOUGHT, r"So the product is \boxed{4"), "stop", False),  # a box cut open
    (render_response(r"6 * 7 = \boxed{42}", "The product is 42."), "stop", False),  # the box is in the thought
    ("<|begin_of_thought|>\n\n" + THOUGHT + r" So \boxed{42}", "stop", False),
    ("<|begin_of_thought|>\n\n" + THOUGHT + "\n\n<|end_of_thought|>\n\n<|begin_of_solution|>" + r"\boxed{42}", "stop",
     False),  # the solution never closed (graded by the evidence rule, but not the format)
    (r"So the product is \boxed{42}.", "stop", False),  # no thought at all
    (r"<think>6 * 7 = 42</think>So the product is \boxed{42}.", "stop", True),  # the <think> layout
    (r"<think>6 * 7 = \boxed{42}</think>", "stop", False),
    ("", "stop", False),
])
def test_format_reward(tokenizer, text, finish_reason, ok):
    c = decode_completion(_ids(tokenizer, text, finish_reason), tokenizer, (tokenizer.eos_token_id,), FORMATS)
    assert c.text == text and c.finish_reason == finish_reason
    assert format_ok(c) is ok
    with _rewards([P], tokenizer, workers=0) as r:
        fmt, logged = _call(r.format, [0], [_ids(tokenizer, text, finish_reason)])
    assert fmt == [1.0 if ok else 0.0] and logged["format_rate"] == fmt


def test_thought_tokens_and_the_length_term(tokenizer):
    assert [length_penalty(t, 100, 20) for t in (0, 80, 90, 100, 500)] == [0.0, 0.0, -0.5, -1.0, -1.0]
    assert [length_penalty(t, 100) for t in (100, 101)] == [0.0, -1.0]
    short = render_response("6 * 7 = 42.", r"\boxed{42}")
    long = render_response(" ".join(["Wait, let me check: 6 * 7 = 42."] * 20), r"\boxed{42}")
    ids = [_ids(tokenizer, t, "stop") for t in (short, long, "plain answer 42")]
    thought = [len(tokenizer(t, add_special_tokens=False)["input_ids"])
               for t in ("6 * 7 = 42.", " ".join(["Wait, let me check: 6 * 7 = 42."] * 20))]
    with _rewards([P], tokenizer, workers=0, thinking_budget=thought[1] + 10, budget_margin=20) as r:
        assert [f.__name__ for f in r.functions()] == ["accuracy", "format", "length"]
        lengths, _ = _call(r.length, [0] * 3, ids)
        _, logged = _call(r.format, [0] * 3, ids)
    assert lengths == [0.0, -0.5, 0.0]
    assert logged["thought_tokens"] == [pytest.approx((thought[0] + thought[1] + 0) / 3)]
    with _rewards([P], tokenizer, workers=0) as r:
        assert [f.__name__ for f in r.functions()] == ["accuracy", "format"]  # no budget, no length term


def test_multiple_choice_and_the_problem_index(tokenizer):
    """Each completion is graded against the problem its row index names (the dataset's ``index`` column)."""
    problems = [P, verdicts.MC]
    texts = [render_response(THOUGHT, r"\boxed{42}"), render_response("Option B is 42.", r"\boxed{B}"),
             render_response("Option B is 42.", r"\boxed{A}"), render_response(THOUGHT, r"\boxed{B}")]
    with _rewards(problems, tokenizer) as r:
        acc, _ = _call(r.accuracy, [0, 1, 1, 0], [_ids(tokenizer, t, "stop") for t in texts])
    assert acc == [1.0, 1.0, 0.0, 0.0]


# --- the real-item case tables (they need ../shared/data) --------------------------------------------------------

def _table_rows(shared_data):
    """(group key, problem, text, finish_reason, expected) per row of the grader's case tables."""
    for name in cases.TABLES:
        for line in (cases.CASES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            problem = cases.problems(name, str(shared_data))[row["item"]]
            if "meta" in row:
                problem = dataclasses.replace(problem, meta={**problem.meta, **row["meta"]})
            if row.get("prediction_from") == "long_thought":
                text = cases.long_thought_responses(str(shared_data))[row["item"]]
            else:
                text = row["prediction"]
            key = (row.get("profile", cases.PROFILE[name]), json.dumps(row.get("overrides", {}), sort_keys=True))
            yield key, problem, text, row.get("finish_reason", "stop"), row["expected"]


def test_accuracy_reward_on_the_real_case_tables(shared_data, tokenizer):
    groups: dict[tuple, list] = defaultdict(list)
    for key, *rest in _table_rows(shared_data):
        groups[key].append(rest)
    checked = 0
    for (profile_name, overrides), rows in groups.items():
        profile = get_profile(profile_name, **json.loads(overrides))
        problems: list[Problem] = [p for p, _, _, _ in rows]
        ids = [_ids(tokenizer, text, fr) for _, text, fr, _ in rows]
        with _rewards(problems, tokenizer, profile=profile) as r:
            acc, _ = _call(r.accuracy, list(range(len(rows))), ids)
        for (problem, text, fr, expected), got in zip(rows, acc, strict=True):
            verdict = grade_text(problem, text, finish_reason=fr, profile=profile).verdict
            assert got == (1.0 if verdict == "correct" else 0.0), (problem.id, verdict, got)
            assert got == (1.0 if expected == "correct" else 0.0), (problem.id, expected, verdict)
            checked += 1
    assert checked > 100
