"""Format checks on rollouts: complete long thought, no repetition loops, length bounds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from virgo.distill.filters import FormatSpec, format_reasons, most_repeated_line, repeated_ngram_share
from virgo.records import Generation
from virgo.thought import BEGIN_SOLUTION, BEGIN_THOUGHT, END_THOUGHT, render_response

THOUGHT = ("The figure shows a right triangle with legs 3 and 4. By the Pythagorean theorem the hypotenuse is "
           "the square root of 9 plus 16, which is 5. Wait, let me check the labels again: the side marked x is "
           "opposite the right angle, so x is the hypotenuse. That confirms x equals 5.")


def gen(text, **kw):
    return Generation(id="p", sample=0, text=text, finish_reason=kw.pop("finish_reason", "stop"), **kw)


def test_a_clean_long_thought_passes():
    assert format_reasons(gen(render_response(THOUGHT, r"The hypotenuse is \boxed{5}."))) == []


@pytest.mark.parametrize("text, reason", [
    (f"{BEGIN_THOUGHT}\n\nstill thinking about the triangle", "status_truncated"),
    (f"{BEGIN_THOUGHT} t {END_THOUGHT}\n\n{BEGIN_SOLUTION} so \\boxed{{5}}", "status_unclosed_solution"),
    (f"{BEGIN_THOUGHT} t {END_THOUGHT} answer \\boxed{{5}}", "status_no_solution"),
    (r"The answer is \boxed{5}.", "status_plain"),
    (render_response("a", "b") + render_response("a", "b"), "status_malformed"),
])
def test_incomplete_shapes_are_rejected(text, reason):
    assert format_reasons(gen(text)) == [reason]


def test_unclosed_solution_allowed_when_completeness_not_required():
    text = f"{BEGIN_THOUGHT}\n\n{THOUGHT}\n\n{END_THOUGHT}\n\n{BEGIN_SOLUTION} so \\boxed{{5}}"
    assert format_reasons(gen(text, finish_reason="length"), FormatSpec(require_complete=False)) == []
    # A truncated thought has no solution at all: never usable.
    assert format_reasons(gen(f"{BEGIN_THOUGHT} t"), FormatSpec(require_complete=False)) == ["status_truncated"]


def test_a_chat_template_token_inside_the_text_is_rejected():
    # Seen in the demo: a tiny model sampled <|image_pad|> into a correct thought; trained on, it broke the
    # image-token count of its batch.
    text = render_response(THOUGHT + " Correct<|image_pad|>", r"The hypotenuse is \boxed{5}.")
    assert format_reasons(gen(text)) == ["control_token"]


def test_empty_sections_are_rejected():
    text = f"{BEGIN_THOUGHT}\n\n{THOUGHT}\n\n{END_THOUGHT}\n\n{BEGIN_SOLUTION}  <|end_of_solution|>"
    assert format_reasons(gen(text)) == ["empty_solution"]


def test_repetition_loop_paragraph_is_detected():
    loop = THOUGHT + "\n" + " ".join(["So the answer is 5 because the hypotenuse is 5 and x is the hypotenuse."] * 12)
    assert repeated_ngram_share(loop) > 0.5
    assert format_reasons(gen(render_response(loop, r"\boxed{5}"))) == ["repetition_ngram"]


def test_repeated_short_lines_are_detected():
    # Short repeated steps between varied lines: the n-gram share stays low, the line rule catches it.
    lines = [f"Step {i}: consider the segment of length {i * 7 % 13} in the figure." for i in range(40)]
    for i in range(0, 40, 5):
        lines.insert(i, "Let me recompute the area.")
    thought = "\n".join(lines)
    assert repeated_ngram_share(thought) < 0.3
    assert most_repeated_line(thought) == ("Let me recompute the area.", 8)
    assert format_reasons(gen(render_response(thought, r"\boxed{5}"))) == ["repetition_line"]
    assert format_reasons(gen(render_response(thought, r"\boxed{5}")), FormatSpec(max_line_repeats=10)) == []


def test_real_long_thoughts_are_not_called_loops(shared_data):
    # Real complete long thoughts (Sky-T1 on MATH-500): the repetition rules must leave nearly all of them alone.
    rows = [json.loads(line) for line in (Path(shared_data) / "long_thought").glob("*.jsonl").__next__().open()]
    texts = [r["code"][0] for r in rows if "<|end_of_solution|>" in r["code"][0]]
    assert len(texts) > 100
    flagged = [t for t in texts if "repetition" in " ".join(format_reasons(gen(t)))]
    assert len(flagged) / len(texts) < 0.05


def test_length_bounds_in_chars_and_tokens():
    g = gen(render_response(THOUGHT, r"\boxed{5}"), thought_tokens=60)
    n = len(THOUGHT)
    assert format_reasons(g, FormatSpec(min_thought=n + 1)) == ["thought_too_short"]
    assert format_reasons(g, FormatSpec(max_thought=n - 1)) == ["thought_too_long"]
    assert format_reasons(g, FormatSpec(min_thought=n, max_thought=n)) == []
    assert format_reasons(g, FormatSpec(unit="tokens", max_thought=59)) == ["thought_too_long"]
    assert format_reasons(g, FormatSpec(unit="tokens", min_thought=60)) == []
    # Without the generation's own count a tokenizer is needed.
    g2 = gen(render_response(THOUGHT, r"\boxed{5}"))
    with pytest.raises(ValueError, match="thought_tokens"):
        format_reasons(g2, FormatSpec(unit="tokens", max_thought=10))
    assert format_reasons(g2, FormatSpec(unit="tokens", max_thought=10), count_tokens=lambda s: len(s.split())) \
        == ["thought_too_long"]


def test_bad_spec_is_refused():
    with pytest.raises(ValueError):
        FormatSpec(unit="words")
    with pytest.raises(ValueError):
        FormatSpec(min_thought=10, max_thought=5)
