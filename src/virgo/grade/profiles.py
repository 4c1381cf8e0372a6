"""Grading profiles: how each benchmark's official scorer differs, as data.

A profile never changes *what* is extracted or how expressions are compared (one library for all);
it switches the few benchmark conventions on or off. Pick one by name (``PROFILES``) or build a variant
with ``get_profile("olympiadbench", max_answer_chars=100)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from virgo.records import Problem

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
    # A solution section that never closed: "truncated" (the contract) or "grade" it when the model
    # stopped on its own (finish_reason "stop") and gave a final answer.
    unclosed_solution: str = "truncated"

    def __post_init__(self) -> None:
        if self.unclosed_solution not in ("truncated", "grade"):
            raise ValueError(f"unclosed_solution must be 'truncated' or 'grade', got {self.unclosed_solution!r}")


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
    for pname in PROFILES:
        if low.startswith(pname):
            return PROFILES[pname]
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
