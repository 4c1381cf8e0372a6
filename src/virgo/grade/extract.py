"""Answer extraction: find the final answer in a response, and say which rule found it.

The answer region is the solution part of the response (``virgo.thought``): nothing inside a thought is graded
-- not an unfinished one, and not a closed one either, unless the response has no solution part and the profile
allows answers from the thought (``thought_answers``). A plain response (no markers) is used whole. The region is
normalised once (full-width punctuation, Unicode scripts) and its closed boxes found once; then the rules of
``virgo.grade.rules.EXTRACTION_RULES`` run by priority and the first that finds something wins.

In a text cut off at the token limit (graded ``truncated`` anyway; the answer is kept for audits) or in a solution
that never closed, only the strong rules count: a value picked out of a cut-off text is not a final answer. For
multiple-choice items the answer is normalised to the option letter whenever the text names one
("\\boxed{(B) 140°}" -> "B", "\\boxed{140°}" -> the letter of the option "140°"); otherwise the text is kept and
compared with the gold option's text.
"""

from __future__ import annotations

from dataclasses import dataclass

from virgo.boxed import scan_boxes
from virgo.grade.choices import letter_of, letters_of, option_of
from virgo.grade.finders import Region
from virgo.grade.golds import alternatives
from virgo.grade.norm import clean, is_text_answer, normalize, split_answers
from virgo.grade.profiles import Profile, get_profile, is_multiple_choice, valid_letters
from virgo.grade.rules import CHOICE, EXTRACTION_RULES, FREE, RULE_NAMES, STRONG_RULES, Rule
from virgo.records import Problem
from virgo.thought import Status, answer_text, parse_response

RULES = RULE_NAMES  # every name Grade.extracted_by can hold
_ORDER = tuple(sorted(EXTRACTION_RULES, key=lambda r: r.priority))

__all__ = ["NONE", "RULES", "STRONG_RULES", "Extraction", "answer_region", "extract_answer", "extract_from_region"]


@dataclass(frozen=True)
class Extraction:
    """The extracted final answer (None if none was found) and the rule that found it."""

    answer: str | None
    rule: str
    # Multi-answer items: every part, repeats included, in order (``answer`` joins the distinct boxes).
    answers: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        return self.answer is not None


NONE = Extraction(None, "none")


def answer_region(text: str, profile: str | Profile = "default") -> tuple[str, Status]:
    """The part of a response that may hold the final answer, and the response's status.

    The solution (or what follows a closed thought); the whole text of a plain response; "" for a thought that
    never closed. A response that is all thought (no solution part) gives its thought only if the profile allows
    answers from the thought.
    """
    prof = get_profile(profile)
    parsed = parse_response(text, prof.thought_formats)
    region = answer_text(parsed, text)
    if parsed.status is Status.MALFORMED:
        region = _after_last_thought(text, parsed.format, prof)
    if not region.strip() and parsed.status is Status.NO_SOLUTION and prof.thought_answers and parsed.thought:
        region = parsed.thought
    return region, parsed.status


def _after_last_thought(text: str, name: str | None, prof: Profile) -> str:
    """A response with its markers out of order or repeated: what follows the last closed thought (without
    solution markers), so that no box written inside a thought is ever read; the whole text if none closed."""
    fmt = next((f for f in prof.thought_formats if f.name == name), None)
    if fmt is None or fmt.end_thought not in text:
        return text
    rest = text[text.rfind(fmt.end_thought) + len(fmt.end_thought):]
    for marker in (fmt.begin_solution, fmt.end_solution):
        rest = rest.replace(marker, "") if marker else rest
    return rest


def extract_answer(text: str, problem: Problem, profile: str | Profile = "default") -> Extraction:
    """The final answer of a full response (thought stripped first) for ``problem``."""
    prof = get_profile(profile)
    return extract_from_region(answer_region(text, prof)[0], problem, prof)


def extract_from_region(region: str, problem: Problem, profile: Profile, *, strong_only: bool = False) -> Extraction:
    """The final answer in an answer region; ``strong_only`` keeps just the strong rules (boxes, listed final
    answers, "the answer is")."""
    if not region.strip():
        return NONE
    text = region  # the rules read the normalised tail (full-width punctuation, Unicode scripts) and boxes
    spans = [(a, b) for a, b in scan_boxes(text)[0] if text[a:b].strip()]
    choice = is_multiple_choice(problem)
    multi = bool(problem.meta.get("is_multiple_answer")) and not choice
    r = Region(text, problem, profile, boxes=[(text.rfind("\\", 0, a), b) for a, b in spans],
               contents=[normalize(text[a:b].strip()) for a, b in spans], multi=multi,
               prose_gold=not choice and any(is_text_answer(a) for a in alternatives(problem)),
               letters=valid_letters(problem, profile) if choice else "")
    kind = CHOICE if choice else FREE
    for rule in _ORDER:
        if kind not in rule.kinds or (strong_only and not rule.strong) or \
                (rule.enabled is not None and not rule.enabled(profile)):
            continue
        found = rule.find(r)
        if found is None:
            continue
        if choice:
            ex = _as_choice(found.answer, rule, r)
            if ex is None:
                continue
            return ex
        parts = found.parts or (tuple(split_answers(found.answer)) if multi else ())
        return Extraction(found.answer, rule.name, parts)
    return NONE


def _as_choice(value: str, rule: Rule, r: Region) -> Extraction | None:
    """A multiple-choice answer as the option letter(s) it names, else (for rules that keep text) its text."""
    letters, choices = r.letters, r.problem.choices
    several = letters_of(value, letters)
    if several:  # "\\boxed{C, D}": kept whole, so a single-answer item can tell it from "C"
        return Extraction(", ".join(several), rule.name)
    # A box, an "answer is" value and a one-line response are answers on their own, so a lowercase letter
    # there names an option ("\\boxed{b}" is B) -- unless it is an option's text (options "2a", "a").
    letter = letter_of(value, letters) or option_of(value, choices) or \
        letter_of(value, letters, whole_answer=rule.name in ("boxed", "answer_is", "whole"))
    if letter:
        return Extraction(letter, rule.name)
    c = clean(value)
    return Extraction(c, rule.name) if rule.choice_text and c else None
