"""Grade one response: status of the long thought, then extraction, then equivalence.

Verdicts (never merged):

``truncated``  the generation stopped at its token limit (``finish_reason == "length"``), whatever it
               holds; the thought never closed; a box never closed (the text was cut inside its final answer);
               or the solution never closed and the evidence does not show a finished answer (by default: the
               model stopped on its own and a closed box follows the thought -- then it is graded)
``no_answer``  a finished response in which no rule found a final answer
``correct`` / ``wrong``  the extracted answer compared with the gold answer

``graded_by`` names what decided: ``finish_reason`` (truncated at the token limit), ``status`` (truncated:
a section never closed), ``extraction`` (no_answer), ``too_long`` (the profile's answer-length rule), an
equivalence rule of ``virgo.grade.equiv``, and, from the pool and the judge, ``timeout``, ``error`` and
``judge``. ``extracted_by`` names the extraction rule. A truncated grade keeps the final answer the response
stated, if any, for audits (it is not compared with the gold). Grades the rules could not really decide
carry ``extra["undecided"] = True``.
"""

from __future__ import annotations

from typing import NamedTuple

from virgo.boxed import unclosed_box
from virgo.grade.equiv import judge_answer
from virgo.grade.extract import answer_region, extract_from_region
from virgo.grade.norm import sanitize
from virgo.grade.profiles import Profile, excluded_reason, get_profile
from virgo.records import Grade, Problem
from virgo.thought import Status

MAX_STORED_CHARS = 1000  # longest extracted answer stored in a Grade


class Job(NamedTuple):
    """One unit of work for a grading worker (picklable)."""

    problem: Problem
    text: str
    finish_reason: str
    profile: Profile
    sample: int


def grade_text(problem: Problem, text: str, *, finish_reason: str = "stop", profile: str | Profile = "default",
               sample: int = 0) -> Grade:
    """Grade one response in this process, without a time limit (use ``grade_many`` for model output at scale).

    Raises ValueError for items the profile excludes (theorem-proving items): filter them out first with
    ``virgo.grade.gradable``.
    """
    prof = get_profile(profile)
    reason = excluded_reason(problem, prof)
    if reason is not None:
        raise ValueError(f"problem {problem.id!r} cannot be graded under profile {prof.name!r}: {reason}")
    return _grade(problem, sanitize(text), finish_reason, prof, sample)


def grade_job(job: Job) -> Grade:
    return grade_text(job.problem, job.text, finish_reason=job.finish_reason, profile=job.profile, sample=job.sample)


def _grade(problem: Problem, text: str, finish_reason: str, prof: Profile, sample: int) -> Grade:
    def grade(verdict: str, graded_by: str, extracted: str | None = None, extracted_by: str | None = None,
              detail: str | None = None, undecided: bool = False) -> Grade:
        if extracted is not None and len(extracted) > MAX_STORED_CHARS:  # keep grade files small and readable
            extracted = f"{extracted[:MAX_STORED_CHARS]}...[{len(extracted) - MAX_STORED_CHARS} more characters]"
        return Grade(id=problem.id, sample=sample, verdict=verdict, extracted=extracted, graded_by=graded_by,
                     extracted_by=extracted_by, gold=problem.answer, detail=detail,
                     extra={"undecided": True} if undecided else {})

    region, status = answer_region(text, prof)
    at_limit = finish_reason == "length"
    unclosed = status is Status.UNCLOSED_SOLUTION
    # In a text cut off at the token limit or in an unclosed solution only an explicit final answer counts (a
    # value picked from cut-off text is none); nothing inside a thought is extracted at all.
    ex = extract_from_region(region, problem, prof, strong_only=at_limit or unclosed)
    stated = (ex.answer, ex.rule) if ex.found else (None, None)  # kept in truncated grades, for audits
    if at_limit:
        # The contract: a generation stopped at its token limit is truncated, even with a box in it -- a box
        # written before the cut may be an intermediate result the model would have revised.
        return grade("truncated", "finish_reason", *stated,
                     detail="finish_reason=length: the generation stopped at its token limit")
    if status is Status.TRUNCATED:
        return grade("truncated", "status", detail="the thought never closed")
    if unclosed_box(region):
        return grade("truncated", "status", detail="a box never closed: the text was cut inside its final answer")
    if unclosed and not _finished(prof, ex):
        return grade("truncated", "status", *stated, detail="the solution never closed")
    if ex.answer is None:
        return grade("no_answer", "extraction", extracted_by="none", detail=f"response status {status.value}")
    if prof.max_answer_chars is not None and len(ex.answer) > prof.max_answer_chars:
        return grade("wrong", "too_long", ex.answer, ex.rule,
                     detail=f"extracted answer longer than {prof.max_answer_chars} characters")
    m = judge_answer(problem, ex.answer, ex.answers, prof)
    detail = m.detail
    if status is not Status.COMPLETE and status is not Status.PLAIN:
        detail = f"{detail}; response {status.value}" if detail else f"response {status.value}"
    return grade("correct" if m.correct else "wrong", m.by, ex.answer, ex.rule, detail, undecided=not m.decided)


def _finished(prof: Profile, ex) -> bool:
    """Whether a solution that never closed (after a normal stop) is graded: by the evidence of a closed box after
    the thought (``"evidence"``), whenever the strong rules found a final answer (``"grade"``), or never."""
    if prof.unclosed_solution == "grade":
        return True
    return prof.unclosed_solution == "evidence" and ex.rule == "boxed"
