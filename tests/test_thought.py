"""The thought format: render, parse, classify; pinned on the 500 real long-thought responses."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from virgo.boxed import boxed_contents, last_boxed, scan_boxes, unclosed_box
from virgo.thought import (
    BEGIN_SOLUTION,
    BEGIN_THOUGHT,
    END_SOLUTION,
    END_THOUGHT,
    FORMATS,
    THINK,
    VIRGO,
    Status,
    ThoughtFormat,
    answer_text,
    parse_response,
    render_response,
    split_response,
    strip_thought,
)


def test_render_parse_round_trip():
    text = render_response("Let me think.\n\nWait, check: 2+2=4.", "So the answer is \\boxed{4}.")
    assert text.startswith(BEGIN_THOUGHT + "\n\n") and text.endswith(END_SOLUTION)
    p = parse_response(text)
    assert p.status is Status.COMPLETE
    assert p.thought == "Let me think.\n\nWait, check: 2+2=4."
    assert p.solution == "So the answer is \\boxed{4}."
    assert p.boxed == "4"


@pytest.mark.parametrize("thought,solution", [
    ("Let me think.", "\\boxed{4}"),
    ("  indented first line\n", "\n\nThe answer is \\boxed{4}.\n"),  # whitespace at the ends is content too
    ("\n", " "),
    ("", ""),
])
def test_split_is_the_exact_inverse_of_render(thought, solution):
    text = render_response(thought, solution)
    assert split_response(text) == (thought, solution)
    p = parse_response(text)  # the parser, for model output, trims each section
    assert p.status is Status.COMPLETE and (p.thought, p.solution) == (thought.strip(), solution.strip())


@pytest.mark.parametrize("text", [
    "plain answer",
    f"{BEGIN_THOUGHT}\nt\n{END_THOUGHT}\n{BEGIN_SOLUTION}s{END_SOLUTION}",  # complete, but not the exact layout
    render_response("t", "s") + "\n",
    render_response(f"a {END_THOUGHT}", "s"),  # a marker inside a section: not one long thought
    f"{BEGIN_THOUGHT}\n\n{END_THOUGHT}\n\n{BEGIN_SOLUTION}s{END_SOLUTION}",  # too few newlines for any thought
])
def test_split_refuses_what_render_cannot_produce(text):
    assert split_response(text) is None


@pytest.mark.parametrize("text,status,boxed", [
    ("The answer is \\boxed{7}.", Status.PLAIN, "7"),
    (f"{BEGIN_THOUGHT} hmm, let me", Status.TRUNCATED, None),
    (f"{BEGIN_THOUGHT} t \\boxed{{3}} {END_THOUGHT}", Status.NO_SOLUTION, None),
    (f"{BEGIN_THOUGHT} t {END_THOUGHT} so \\boxed{{5}}", Status.NO_SOLUTION, "5"),
    (f"{BEGIN_THOUGHT} t {END_THOUGHT}{BEGIN_SOLUTION} \\boxed{{9}} and more", Status.UNCLOSED_SOLUTION, "9"),
    (f"t {END_THOUGHT}{BEGIN_SOLUTION}\\boxed{{2}}{END_SOLUTION}", Status.COMPLETE, "2"),  # prefilled opening
    (f"{BEGIN_THOUGHT}{BEGIN_THOUGHT} t {END_THOUGHT}", Status.MALFORMED, None),
    (f"{BEGIN_SOLUTION}x{END_SOLUTION}", Status.MALFORMED, None),
    (f"{BEGIN_THOUGHT} a {BEGIN_SOLUTION} b {END_THOUGHT}", Status.MALFORMED, None),
    (f"{END_THOUGHT} a {BEGIN_THOUGHT} b", Status.MALFORMED, None),
])
def test_classes(text, status, boxed):
    p = parse_response(text)
    assert p.status is status
    assert p.boxed == boxed


def test_truncated_thought_yields_no_answer_text():
    assert strip_thought(f"{BEGIN_THOUGHT} maybe \\boxed{{3}}") == ""
    assert strip_thought(render_response("t", "s \\boxed{1}")) == "s \\boxed{1}"


def test_boxed_nested_and_hostile():
    assert last_boxed("\\boxed{\\frac{1}{2}} and \\boxed{\\sqrt{\\{x\\}}}") == "\\sqrt{\\{x\\}}"
    assert boxed_contents("\\fbox{A} \\boxed{B}") == ["A", "B"]
    assert last_boxed("\\boxed{1} \\boxed{unclosed") == "1"
    deep = "\\boxed{" + "{" * 10000 + "x" + "}" * 10000 + "}"
    assert last_boxed(deep) == "{" * 10000 + "x" + "}" * 10000


def test_unclosed_boxes_are_found():
    assert unclosed_box("so \\boxed{12") and unclosed_box("\\boxed{1} then \\boxed{\\frac{1}{2}")
    assert not unclosed_box("\\boxed{1} and \\boxed{\\{2\\}}")
    spans, start = scan_boxes("a \\boxed{1} b \\boxed{2")
    assert len(spans) == 1 and start == 14  # where the unclosed "\\boxed" starts


# --- <think>...</think> and configured markers ---------------------------------------------------------------

@pytest.mark.parametrize(("text", "status", "thought", "solution"), [
    ("<think>\nLet me see.\n</think>\n\nThe answer is 4.", Status.COMPLETE, "Let me see.", "The answer is 4."),
    ("<think>Let me see.</think>", Status.NO_SOLUTION, "Let me see.", None),
    ("Let me see.</think>The answer is 4.", Status.COMPLETE, "Let me see.", "The answer is 4."),  # pre-filled <think>
    ("<think>Let me see, maybe 4", Status.TRUNCATED, "Let me see, maybe 4", None),
    ("<think>a</think>So far 3.<think>b", Status.TRUNCATED, "b", None),  # a second thought that never closed
    ("<think>a</think>x<think>b</think>The answer is 4.", Status.COMPLETE, "a</think>x<think>b", "The answer is 4."),
])
def test_think_format(text, status, thought, solution):
    p = parse_response(text, FORMATS)
    assert (p.status, p.thought, p.solution, p.format) == (status, thought, solution, "think")


def test_think_markers_only_when_asked():
    text = "<think>\\boxed{3}</think>So \\boxed{4}"
    assert parse_response(text).status is Status.PLAIN  # the Virgo-only default every data tool relies on
    assert strip_thought(text) == text
    assert strip_thought(text, FORMATS) == "So \\boxed{4}"
    assert parse_response(text, FORMATS).boxed == "4"
    # Virgo markers win when both occur (a <think> inside a Virgo thought is just text).
    virgo = render_response("<think>x</think> \\boxed{3}", "\\boxed{4}")
    p = parse_response(virgo, FORMATS)
    assert (p.format, p.solution) == ("virgo", "\\boxed{4}")


def test_configured_markers():
    fmt = ThoughtFormat.parse("<reasoning>...</reasoning>")
    assert (fmt.begin_thought, fmt.end_thought) == ("<reasoning>", "</reasoning>")
    assert ThoughtFormat.parse("<r> </r>") == ThoughtFormat("custom:<r>", "<r>", "</r>")
    assert ThoughtFormat.parse("<r>…</r>").end_thought == "</r>"
    for bad in ("<reasoning>", "a ... a", "x y z"):
        with pytest.raises(ValueError, match="thought markers"):
            ThoughtFormat.parse(bad)
    p = parse_response("<reasoning>hmm</reasoning> 42", (VIRGO, THINK, fmt))
    assert (p.status, p.solution) == (Status.COMPLETE, "42")
    assert answer_text(parse_response("<reasoning>hmm", (fmt,)), "<reasoning>hmm") == ""


# Counts on the 500 real Sky-T1 responses (shared/data/long_thought), each class checked by hand on samples:
# - plain (210): the model never wrote a marker (e.g. "So I need to find out how many ... **Final Answer** \boxed{9}").
#   About 55 of them stop mid-sentence ("... and b = 0.7c,\n\na^2 + (0.7c)^2 =") and evidently ran out of tokens,
#   yet they are plain, not truncated: the classes are about the markers only, and "truncated" means a thought
#   that opened and never closed. Whether a text hit its token limit is the generation's finish_reason, which
#   this data does not record; the grader makes a finish_reason of "length" truncated whatever the class, and
#   without one reads no final answer from a text cut off mid-sentence (see grade/AUDIT.md);
# - complete (179): equals the manifest's 179 responses containing <|end_of_solution|>;
# - truncated (94): thought opened, cut off by the token limit;
# - unclosed_solution (16): solution opened, cut off before <|end_of_solution|>;
# - no_solution (1): item 94 closes a (prefilled) thought and never opens a solution.
# One complete response (item 343) has no <|begin_of_thought|>: its prompt pre-filled the opening marker.
REAL_COUNTS = {"plain": 210, "complete": 179, "truncated": 94, "unclosed_solution": 16, "no_solution": 1}


def test_parser_on_real_long_thoughts(shared_data):
    path = shared_data / "long_thought" / "Sky-T1-math-correct-5K-27B__math500.jsonl"
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    assert len(rows) == 500
    parsed = [parse_response(r["code"][0]) for r in rows]
    assert Counter(p.status.value for p in parsed) == REAL_COUNTS
    # Every complete response carries a non-empty thought and solution, and the solution closes the text.
    for r, p in zip(rows, parsed):
        if p.status is Status.COMPLETE:
            assert p.thought and p.solution
            assert r["code"][0].rstrip().endswith(END_SOLUTION)
    assert parsed[343].status is Status.COMPLETE and BEGIN_THOUGHT not in rows[343]["code"][0]
    assert parsed[94].status is Status.NO_SOLUTION
