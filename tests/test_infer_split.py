"""Thought/answer splitting: streamed in arbitrary pieces equals the split of the finished text; round trips."""

from __future__ import annotations

import random

import pytest

from virgo.infer.split import ANSWER, THOUGHT, StreamSplitter, join_reasoning, split_reasoning
from virgo.thought import Status, parse_response, render_response

COMPLETE = render_response("First, 3 + 4 = 7.\n\nWait, check: yes.", "The answer is \\boxed{7}.")
TRUNCATED = "<|begin_of_thought|>\n\nLet me think about <|end_of_thought|> markers later"[:-40]
UNCLOSED = "<|begin_of_thought|>\n\nHmm.\n\n<|end_of_thought|>\n\n<|begin_of_solution|>It is 7"
PLAIN = "  The answer is 7.\n"


def streamed(text: str, seed: int) -> tuple[str | None, str]:
    rng = random.Random(seed)
    s = StreamSplitter()
    pieces = []
    i = 0
    while i < len(text):
        j = i + rng.randint(1, 6)
        pieces += s.feed(text[i:j])
        i = j
    pieces += s.finish()
    thought = "".join(t for k, t in pieces if k == THOUGHT)
    answer = "".join(t for k, t in pieces if k == ANSWER)
    kinds = [k for k, _ in pieces]
    assert kinds == sorted(kinds, key=lambda k: k == ANSWER)  # all thought before any answer
    return (thought if THOUGHT in kinds else None), answer


@pytest.mark.parametrize("text", [COMPLETE, TRUNCATED, UNCLOSED, PLAIN])
def test_stream_split_equals_split_of_the_whole(text):
    want = split_reasoning(text)
    for seed in range(20):
        assert streamed(text, seed) == want


def test_split_reasoning_sections():
    assert split_reasoning(COMPLETE) == ("First, 3 + 4 = 7.\n\nWait, check: yes.", "The answer is \\boxed{7}.")
    assert split_reasoning(PLAIN) == (None, PLAIN)
    assert split_reasoning(TRUNCATED)[1] == ""


@pytest.mark.parametrize("text,finish", [(COMPLETE, "stop"), (TRUNCATED, "length"), (UNCLOSED, "length")])
def test_join_reasoning_restores_the_layout(text, finish):
    thought, answer = split_reasoning(text)
    joined = join_reasoning(thought, answer, finish)
    a, b = parse_response(joined), parse_response(text)
    assert (a.status, a.thought, a.solution, a.boxed) == (b.status, b.thought, b.solution, b.boxed)
    assert join_reasoning(None, PLAIN, "stop") == PLAIN and parse_response(joined).status is not Status.MALFORMED
