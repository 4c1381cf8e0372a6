"""Verdict semantics (correct / wrong / no_answer / truncated, never merged), extraction rules, summaries,
and the ``grade_many`` contract (order, refusals)."""

from __future__ import annotations

import pytest

from virgo.grade import PROFILES, RULES, extract_answer, get_profile, grade_many, grade_text, render_summary, summarize
from virgo.records import VERDICTS, Generation, Grade, Problem
from virgo.thought import render_response

P = Problem(id="p1", question="What is 6 * 7?", answer="42")
MC = Problem(id="m1", question="Pick one.\nChoices:\nA. 40\nB. 42\nC. 44", answer="B", choices=["40", "42", "44"],
             answer_type="multiple_choice")
THOUGHT = "6 * 7: six sevens. 7 + 7 + 7 + 7 + 7 + 7 = 42. Wait, let me double-check: 6 * 7 = 42."


# --- the four verdicts ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "finish_reason", "verdict", "graded_by"), [
    (render_response(THOUGHT, r"So the product is \boxed{42}."), "stop", "correct", "exact"),
    (render_response(THOUGHT, r"So the product is \boxed{43}."), "stop", "wrong", "numeric"),
    (render_response(THOUGHT, "I could not settle on a value."), "stop", "no_answer", "extraction"),
    # The thought never closed: nothing inside an unfinished thought is graded, even a box.
    ("<|begin_of_thought|>\n\n" + THOUGHT + r" So \boxed{42}", "stop", "truncated", "status"),
    # The solution never closed, but the model stopped on its own after a closed box: graded (the evidence).
    ("<|begin_of_thought|>\n\n" + THOUGHT + "\n\n<|end_of_thought|>\n\n<|begin_of_solution|>" + r"\boxed{42}",
     "stop", "correct", "exact"),
    # The solution never closed and holds no closed box: truncated.
    ("<|begin_of_thought|>\n\n" + THOUGHT + "\n\n<|end_of_thought|>\n\n<|begin_of_solution|>So the product is 42",
     "stop", "truncated", "status"),
    # A box that never closes is never credited, even after a normal stop.
    (render_response(THOUGHT, r"So the product is \boxed{4"), "stop", "truncated", "status"),
    (r"The product is \boxed{42} or, better, \boxed{4", "stop", "truncated", "status"),
    # <think>...</think> (DeepSeek-R1 / Qwen3): a box inside the closed thought is not an answer.
    (r"<think>6 * 7 = \boxed{42}</think>", "stop", "no_answer", "extraction"),
    (r"<think>6 * 7 = \boxed{42}</think>So the product is \boxed{42}.", "stop", "correct", "exact"),
    (r"6 * 7 = \boxed{41}? No.</think>The product is \boxed{42}.", "stop", "correct", "exact"),  # pre-filled <think>
    (r"<think>6 * 7 = \boxed{42} and so", "stop", "truncated", "status"),
    # Markers repeated (malformed): still nothing from inside a closed thought.
    (("<|begin_of_thought|>6 * 7 = \\boxed{42}<|end_of_thought|><|begin_of_thought|>hmm<|end_of_thought|>"
      "<|begin_of_solution|>I could not decide.<|end_of_solution|>"), "stop", "no_answer", "extraction"),
    # Stopped at the token limit (the contract): truncated whatever the text holds, a final answer too.
    ("<|begin_of_thought|>\n\n" + THOUGHT, "length", "truncated", "finish_reason"),
    ("<|begin_of_thought|>\n\n" + THOUGHT + "\n\n<|end_of_thought|>\n\n<|begin_of_solution|>So the product",
     "length", "truncated", "finish_reason"),
    (r"6 * 7 = 42, and the answer is \boxed{42}", "length", "truncated", "finish_reason"),
    (render_response(THOUGHT, r"So the product is \boxed{42}."), "length", "truncated", "finish_reason"),
    ("Six sevens... 6 * 7 = 42. So the product is 42.", "length", "truncated", "finish_reason"),
    ("Six sevens... 6 * 7 = 42. So the product is 42.", "stop", "correct", "exact"),
    ("", "stop", "no_answer", "extraction"),
    ("", "length", "truncated", "finish_reason"),
])
def test_verdicts(text, finish_reason, verdict, graded_by):
    g = grade_text(P, text, finish_reason=finish_reason)
    assert (g.verdict, g.graded_by) == (verdict, graded_by), g
    assert g.verdict in VERDICTS and g.id == "p1" and g.gold == "42"
    if verdict in ("correct", "wrong"):
        assert g.extracted is not None and g.extracted_by in RULES
    if verdict == "truncated":
        assert g.detail and ("finish_reason=length" in g.detail) == (finish_reason == "length")


def test_truncated_grades_keep_the_stated_answer_for_audits():
    # At the token limit only an explicit final answer is kept (a value from cut-off prose is none), never graded.
    boxed = grade_text(P, r"6 * 7 = 42, and the answer is \boxed{42}", finish_reason="length")
    assert (boxed.verdict, boxed.extracted, boxed.extracted_by) == ("truncated", "42", "boxed")
    prose = grade_text(P, "Six sevens... 6 * 7 = 42. So the product is 42.", finish_reason="length")
    assert (prose.verdict, prose.extracted, prose.extracted_by) == ("truncated", None, None)
    unclosed = "<|begin_of_thought|>\n\n" + THOUGHT + "\n\n<|end_of_thought|>\n\n<|begin_of_solution|>" + \
        "The answer is 41. But wait, let me"
    g = grade_text(P, unclosed)
    assert (g.verdict, g.graded_by, g.extracted) == ("truncated", "status", "41")
    # Inside a thought that never closed nothing is extracted, not even for the audit.
    assert grade_text(P, "<|begin_of_thought|>\n\n" + r"\boxed{42}", finish_reason="length").extracted is None


def test_unclosed_solution_policies():
    head = "<|begin_of_thought|>\n\n" + THOUGHT + "\n\n<|end_of_thought|>\n\n<|begin_of_solution|>"
    boxed, stated = head + r"\boxed{42}", head + "The answer is 42."
    strict, lenient = (get_profile("default", unclosed_solution="truncated"),
                       get_profile("default", unclosed_solution="grade"))
    # "evidence" (the default): a closed box after the thought, after a normal stop.
    assert [grade_text(P, t).verdict for t in (boxed, stated)] == ["correct", "truncated"]
    assert [grade_text(P, t, profile=lenient).verdict for t in (boxed, stated)] == ["correct", "correct"]
    assert [grade_text(P, t, profile=strict).verdict for t in (boxed, stated)] == ["truncated", "truncated"]
    for prof in ("default", strict, lenient):
        assert grade_text(P, boxed, profile=prof, finish_reason="length").verdict == "truncated"
    with pytest.raises(ValueError, match="unclosed_solution"):
        get_profile("default", unclosed_solution="sometimes")


def test_thought_answers_only_when_the_profile_allows_and_no_solution_follows():
    only_thought = r"<think>6 * 7 = 42, so the answer is \boxed{42}</think>"
    allow = get_profile("default", thought_answers=True)
    assert grade_text(P, only_thought).verdict == "no_answer"
    assert grade_text(P, only_thought, profile=allow).verdict == "correct"
    # A solution part follows: the thought's box never counts, whatever the profile.
    assert grade_text(P, only_thought + "I am not sure.", profile=allow).verdict == "no_answer"
    virgo = render_response(r"So \boxed{42}", "")
    assert grade_text(P, virgo, profile=allow).verdict == "no_answer"  # an (empty) solution section is a solution part


def test_configured_thought_markers():
    from virgo.grade import GradeConfig

    text = r"<reasoning>6 * 7 = 42, so \boxed{42}.</reasoning>Hmm, I cannot decide."
    assert grade_text(P, text).verdict == "correct"  # markers it does not know: the whole text is the answer
    prof = GradeConfig(thought_markers=["<reasoning>...</reasoning>"]).profile_obj()
    assert grade_text(P, text, profile=prof).verdict == "no_answer"
    assert grade_text(P, text + r" It is \boxed{42}.", profile=prof).verdict == "correct"
    with pytest.raises(ValueError, match="thought markers"):
        GradeConfig(thought_markers=["<reasoning>"]).profile_obj()


def test_sample_and_stored_answer():
    g = grade_text(P, r"\boxed{" + "1" * 5000 + "}", sample=3)
    assert g.sample == 3 and g.verdict == "wrong"
    assert len(g.extracted) < 1100 and g.extracted.endswith("more characters]")


# --- extraction rules, each named in the grade ------------------------------------------------------------

@pytest.mark.parametrize(("problem", "text", "answer", "rule"), [
    (P, r"First \boxed{41}, then \boxed{\frac{84}{2}}", r"\frac{84}{2}", "boxed"),
    (P, r"We get \fbox{42}.", "42", "boxed"),
    (P, r"\boxed{\{1, \{2\}\}}", r"\{1, \{2\}\}", "boxed"),
    (P, "Multiplying gives the result.\nThe final answer is: $42$", "42", "answer_is"),
    (P, "**Final Answer**\n\n42 apples", "42 apples", "answer_is"),
    (P, "答案是 42", "42", "answer_is"),
    (P, "42", "42", "whole"),
    (P, "Six sevens make forty-two.\nTherefore, $6 \\times 7 = 42$.", "42", "final_statement"),
    (P, "I am not sure.", None, "none"),
    (MC, "The middle option fits.\n(B)", "B", "letter"),
    (MC, r"\boxed{42}", "B", "boxed"),
    (MC, "After checking, it is option C.", "C", "letter"),
])
def test_extraction_rules(problem, text, answer, rule):
    ex = extract_answer(text, problem, "default")
    assert (ex.answer, ex.rule) == (answer, rule)
    assert ex.found == (answer is not None)


def test_option_mentions_only_in_the_mmmu_profile():
    mention = Problem(id="m2", question="Which organ?", answer="B", choices=["rectum", "pancreas", "stomach"],
                      answer_type="multiple_choice")
    assert extract_answer("It must be the pancreas, which makes the juice.", mention, "mmmu").rule == "option_mention"
    assert extract_answer("It must be the pancreas, which makes the juice.", mention, "default").answer is None


def test_thought_is_stripped_before_extraction():
    text = render_response(r"Maybe \boxed{41}? No.", "The product is 42.")
    assert extract_answer(text, P).answer == "42"


def test_profiles_exist():
    assert set(PROFILES) == {"default", "mathvision", "mathverse", "olympiadbench", "mmmu", "mathvista", "wemath",
                             "logicvista", "dynamath", "scibench"}
    with pytest.raises(ValueError, match="unknown grading profile"):
        get_profile("gsm8k")


# --- summaries -------------------------------------------------------------------------------------------

def _grade(verdict: str, by: str) -> Grade:
    return Grade(id="x", sample=0, verdict=verdict, extracted=None, graded_by=by)


def test_summary_counts_every_verdict_separately():
    grades = [_grade("correct", "exact"), _grade("correct", "math_verify"), _grade("truncated", "status"),
              _grade("no_answer", "extraction"), _grade("truncated", "status")]
    s = summarize(grades)
    assert s["n"] == 5 and s["accuracy"] == pytest.approx(2 / 5)
    assert s["verdicts"] == {"correct": 2, "wrong": 0, "no_answer": 1, "truncated": 2}  # zero counts kept
    assert s["graded_by"] == {"status": 2, "exact": 1, "math_verify": 1, "extraction": 1}
    empty = summarize([])
    assert empty["n"] == 0 and empty["accuracy"] == 0.0 and set(empty["verdicts"]) == set(VERDICTS)


def test_summary_table_lists_all_verdicts():
    from rich.console import Console

    console = Console(width=120, record=True)
    console.print(render_summary(summarize([_grade("correct", "exact"), _grade("wrong", "timeout")]), title="run"))
    out = console.export_text()
    assert "accuracy = 50.00%" in out
    for word in ("correct", "wrong", "no_answer", "truncated", "timeout", "graded_by"):
        assert word in out


# --- grade_many ----------------------------------------------------------------------------------------------

def test_grade_many_keeps_order_when_items_finish_out_of_order():
    slow = r"\boxed{10^{10^{10^{10}}}}"  # killed at the time limit, so it finishes last
    texts = [slow] + [rf"\boxed{{{40 + i % 4}}}" for i in range(11)]
    problems = [Problem(id=f"q{i}", question="?", answer="42") for i in range(len(texts))]
    items = [(p, Generation(id=p.id, sample=i % 3, text=t, finish_reason="stop"))
             for i, (p, t) in enumerate(zip(problems, texts))]
    grades = grade_many(items, workers=2, timeout=0.5)
    assert [(g.id, g.sample) for g in grades] == [(p.id, gen.sample) for p, gen in items]
    assert grades[0].graded_by == "timeout"
    assert [g.verdict for g in grades[1:]] == ["correct" if (40 + i % 4) == 42 else "wrong" for i in range(11)]
    # In this process (workers=0, no time limit) the same items grade the same, the tower excepted.
    assert [g.verdict for g in grade_many(items[1:], workers=0)] == [g.verdict for g in grades[1:]]


def test_grade_many_refuses_bad_batches_before_grading():
    gen = Generation(id="other", sample=0, text=r"\boxed{42}", finish_reason="stop")
    with pytest.raises(ValueError, match="paired with problem"):
        grade_many([(P, gen)], workers=0)
    proof = Problem(id="tp", question="Prove it.", answer="", meta={"label": "Theorem_Proving"})
    with pytest.raises(ValueError, match="theorem-proving"):
        grade_many([(proof, Generation(id="tp", sample=0, text="Proof.", finish_reason="stop"))], workers=0)
    assert grade_many([], workers=2) == []
