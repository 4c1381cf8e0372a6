"""Stop strings: the matcher on text in pieces, the decoding loop on the tiny model (text and stream end before the
stop string, also one that straddles tokens; rows stay independent), and the run's identity."""

from __future__ import annotations

import random

import pytest

from virgo.infer import GenerateConfig, GenRequest, make_backend, run_generate
from virgo.infer.stops import StopMatcher
from virgo.prompts import build_messages
from virgo.records import Generation, Problem, read_records
from virgo.records.runheader import RunMismatchError


def feed_all(stops, pieces):
    m = StopMatcher(stops)
    out = [m.feed(p) for p in pieces]
    out.append(m.finish())
    return m, out


def test_a_stop_string_split_across_pieces_is_found_and_never_let_out():
    m, out = feed_all(["</answer>"], ["ab", "c</", "ans", "wer>x", "yz"])
    assert (m.at, m.output, "".join(out)) == (3, "abc", "abc")
    assert all("<" not in piece for piece in out)


def test_the_earliest_of_several_stop_strings_wins_and_a_partial_one_at_the_end_is_text():
    assert feed_all(["END", "STOP"], ["xxSTOPyyEND"])[0].output == "xx"
    m, out = feed_all(["world!"], ["hello wor"])
    assert m.at is None and out == ["hell", "o wor"]  # held back while "wor" could begin "world!"
    m, out = feed_all(["world!"], ["hello wor", "ld!", "more"])
    assert (m.output, out) == ("hello ", ["hell", "o ", "", ""])


def reference(text: str, stops: list[str], pieces: list[str]) -> str:
    """The output stops at the first piece after which the text holds a stop string, before the earliest one then
    present (a longer stop string that started earlier but completes later never gets the chance)."""
    end = 0
    for piece in pieces:
        end += len(piece)
        found = [i for i in (text[:end].find(s) for s in stops) if i >= 0]
        if found:
            return text[:min(found)]
    return text


def test_matcher_equals_searching_the_text_so_far_after_each_of_random_pieces():
    rng = random.Random(0)
    for _ in range(2000):
        text = "".join(rng.choice("ab\n") for _ in range(rng.randint(0, 30)))
        stops = ["".join(rng.choice("ab\n") for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(1, 3))]
        cuts = sorted(rng.sample(range(len(text) + 1), k=min(len(text) + 1, rng.randint(0, 6))))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        m, out = feed_all(stops, pieces)
        want = reference(text, stops, pieces)
        assert m.output == want and "".join(out) == want, (text, stops, pieces)


@pytest.fixture(scope="module")
def backend(tiny_model):
    return make_backend("transformers", model=tiny_model)


def request(cfg=None, on_text=None, q="What is 12 + 7?"):
    return GenRequest(build_messages(q, 0, prompt="plain"), id="s", cfg=cfg, on_text=on_text)


def test_generation_ends_before_a_stop_string_that_straddles_tokens_and_streams_nothing_past_it(backend, tiny_model):
    tok = tiny_model[1].tokenizer
    cfg = GenerateConfig(max_new_tokens=40, temperature=1.0, seed=1)  # greedy: the random model repeats one token
    (full,) = backend.generate([request()], cfg)
    prefixes = [backend._decode(full.token_ids[:k]) for k in range(1, len(full.token_ids))]
    ends = [len(p) for p in prefixes if full.text.startswith(p)]  # token boundaries in the text
    # a stop string across the boundary of two tokens, in the middle of the output, first seen there
    at = next(e for e in ends[len(ends) // 3:] if 2 <= e and full.text.find(full.text[e - 2:e + 2]) == e - 2
              and len(full.text[e - 2:e + 2]) == 4)
    stop = full.text[at - 2:at + 2]
    pieces: list[str] = []
    (out,) = backend.generate([request(cfg.replace(stop=[stop, "never there \x00"]), pieces.append)], cfg)
    assert out.text == full.text[:at - 2] == "".join(pieces)
    assert out.finish_reason == "stop" and stop not in out.text
    # the tokens run up to the one that completes the stop string, and are all counted
    assert len(tok.decode(out.token_ids, skip_special_tokens=False)) >= at + 2 > len(out.text)
    assert out.completion_tokens == len(out.token_ids) < len(full.token_ids)
    # a row without stop strings beside it is what it is alone
    both = backend.generate([request(cfg.replace(stop=[stop])), request(q="Hi"), request()], cfg)
    assert [o.text for o in both] == [out.text, backend.generate([request(q="Hi")], cfg)[0].text, full.text]


def test_stop_enters_the_run_identity_only_when_set(backend, tmp_path):
    problems = [Problem(id="p", question="What is 1 + 1?", answer="2")]
    cfg = GenerateConfig(max_new_tokens=8, prompt="plain")
    run_generate(backend, problems, tmp_path / "g.jsonl", cfg, progress=False)
    (g,) = read_records(tmp_path / "g.jsonl", Generation)
    assert "stop" not in g.settings  # outputs written before stop strings existed keep resuming
    with pytest.raises(RunMismatchError, match="stop"):
        run_generate(backend, problems, tmp_path / "g.jsonl", cfg.replace(stop=["x"]), progress=False)
    run_generate(backend, problems, tmp_path / "s.jsonl", cfg.replace(stop=["x", "y"]), progress=False)
    assert read_records(tmp_path / "s.jsonl", Generation)[0].settings["stop"] == ["x", "y"]


def test_an_empty_stop_string_is_refused():
    with pytest.raises(ValueError, match="stop: every stop string must be non-empty"):
        GenerateConfig(stop=[""])
