"""Grading profiles: how each benchmark's official scorer differs, as data.

A profile never changes *what* is extracted or how expressions are compared (one library for all);
it switches the few benchmark conventions on or off: tolerances, whether a unit conversion counts, which thought
markers exist, what happens to a solution that never closed. Pick one by name (``PROFILES``) or build a variant
with ``get_profile("olympiadbench", max_answer_chars=100)``; ``virgo.grade.config.GradeConfig`` is the
user-facing way to do both.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from virgo.records import Problem
from virgo.thought import FORMATS, ThoughtFormat

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Values of Problem.answer_type / meta["question_type"] / meta["label"] that mark a theorem-proving item
# (OlympiadBench spells it three ways across releases; loaders may use any of them).
THEOREM_PROOF = {"theorem proof", "theorem-proof", "theorem_proof", "theorem proving", "theorem-proving",
                 "theorem_proving", "proof", "tp"}
MULTIPLE_CHOICE = {"multiple_choice", "multiple-choice", "multi-choice", "multichoice", "mc"}


@dataclass(frozen=True)
class Profile:
    """One benchmark's grading conventions (all fields have the neutral default)."""

    name: str
    description: str = ""
    # Letters accepted for a multiple-choice item that carries no option list (options drawn in the image).
    letters_without_choices: str = "ABCDE"
    # MMMU: when no letter is given, a response naming exactly one option's text (in its last paragraph)
    # chose that option. There is never a random fallback.
    option_mentions: bool = False
    # MMMU open answers: numbers equal after rounding both to this many decimals.
    round_digits: int | None = None
    # MMMU open answers: a text gold answer found as a phrase inside the extracted answer counts.
    phrase_match: bool = False
    # OlympiadBench's official judge counts an extraction longer than this as wrong (off by default).
    max_answer_chars: int | None = None
    # Theorem-proving items have no final answer to check; they are refused (filter them out first).
    exclude_theorem_proofs: bool = True
    # A solution section that never closed: "evidence" grades it when the model stopped on its own
    # (finish_reason "stop") and a closed box follows the thought; "truncated" never grades it; "grade" grades it
    # whenever the model stopped on its own and the strong rules find a final answer.
    unclosed_solution: str = "evidence"
    # Numbers: a relative tolerance (None: none; never a flat default, 902 and 901 differ), an absolute one for
    # items without their own (DynaMath's 1e-3), and whether a gold written with fewer figures is matched by
    # values that round to it (0.2381 for 0.24).
    rel_tol: float | None = None
    abs_tol: float | None = None
    written_precision: bool = True
    # Every item is a measured quantity (integer trailing zeros may be rounding, a rounded answer counts); otherwise
    # only items with a unit or a tolerance are.
    science: bool = False
    # 50 cm for 0.5 m: a conversion between units of the same dimension counts.
    unit_conversion: bool = True
    # Thought layouts recognised (Virgo's markers, <think>...</think>, and any configured pair); nothing inside a
    # closed thought is an answer unless the response has no solution part and thought_answers is set.
    thought_formats: tuple[ThoughtFormat, ...] = FORMATS
    thought_answers: bool = False

    def __post_init__(self) -> None:
        if self.unclosed_solution not in UNCLOSED_SOLUTION:
            raise ValueError(f"unclosed_solution must be one of {', '.join(UNCLOSED_SOLUTION)}, "
                             f"got {self.unclosed_solution!r}")
        for name in ("rel_tol", "abs_tol"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")


UNCLOSED_SOLUTION = ("evidence", "truncated", "grade")


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("default", "Boxed / 'the answer is' extraction, Math-Verify equivalence, letters or option text "
                           "for items with choices."),
        Profile("mathvision", "MATH-Vision: letters A-E (options may be drawn in the image) or free-form answers."),
        Profile("mathverse", "MathVerse: multi-choice letters or option text; free-form answers with units and "
                             "degrees (bearings such as 315°T)."),
        Profile("olympiadbench", "OlympiadBench: per-item tolerance (error), units, multiple answers; "
                                 "theorem-proving items excluded. max_answer_chars=100 gives the official "
                                 "length rule."),
        Profile("mmmu", "MMMU: options A-J parsed without a random fallback (a single named option counts); "
                        "open answers numeric (2 decimals) or a text phrase.",
                letters_without_choices="ABCDEFGHIJ", option_mentions=True, round_digits=2, phrase_match=True),
        Profile("mathvista", "MathVista: option texts or letters; free-form integers, and floats at the item's "
                             "precision (meta['precision'] decimals).", letters_without_choices="ABCDEFGH"),
        Profile("wemath", "We-Math: option letters A-E (the option list is part of the question)."),
        Profile("logicvista", "LogicVista: option letters (several letters when the answer names several)."),
        Profile("dynamath", "DynaMath: option letters, text, and floats within an absolute 1e-3 (its official "
                            "rule).", abs_tol=1e-3),
        Profile("scibench", "SciBench-style university science: numbers within a relative 5% (its official rule), "
                            "units converted.", rel_tol=0.05, science=True),
    )
}


def get_profile(profile: str | Profile = "default", **overrides) -> Profile:
    """A profile by name (or a Profile, returned as is), optionally with fields replaced."""
    if isinstance(profile, Profile):
        base = profile
    else:
        if profile not in PROFILES:
            raise ValueError(f"unknown grading profile {profile!r}; known: {', '.join(PROFILES)}")
        base = PROFILES[profile]
    return dataclasses.replace(base, **overrides) if overrides else base


def profile_for_benchmark(name: str) -> Profile:
    """The profile of a benchmark name: exact profile names, or a name that starts with one ("mathverse-mini")."""
    low = name.lower().replace("_", "-")
    if low in PROFILES:
        return PROFILES[low]
    for pname, prof in PROFILES.items():
        if low.startswith(pname):
            return prof
    raise ValueError(f"no grading profile for benchmark {name!r}; known: {', '.join(PROFILES)}")


def _norm(v: object) -> str:
    return str(v or "").strip().lower()


def excluded_reason(problem: Problem, profile: str | Profile = "default") -> str | None:
    """Why ``problem`` cannot be graded under ``profile`` (None when it can)."""
    prof = get_profile(profile)
    if prof.exclude_theorem_proofs:
        kinds = {_norm(problem.answer_type), _norm(problem.meta.get("question_type")),
                 _norm(problem.meta.get("label"))}
        if kinds & THEOREM_PROOF:
            return "theorem-proving item (no final answer to check)"
    return None


def gradable(problem: Problem, profile: str | Profile = "default") -> bool:
    return excluded_reason(problem, profile) is None


def is_multiple_choice(problem: Problem) -> bool:
    return bool(problem.choices) or _norm(problem.answer_type) in MULTIPLE_CHOICE or \
        _norm(problem.meta.get("question_type")) in MULTIPLE_CHOICE


def valid_letters(problem: Problem, profile: Profile) -> str:
    if problem.choices:
        return LETTERS[:len(problem.choices)]
    return profile.letters_without_choices
