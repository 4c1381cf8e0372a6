"""Equivalence of an extracted answer with the gold answer, beyond what Math-Verify knows.

Order of checks for one answer (the first that decides wins, and names itself in ``graded_by``):

``exact``           same normalised string (case, spaces, ``$``, ``\\text{}``, degree spellings ignored), also
                    once a left-hand side ("x_0 =", "S.A. =", "The area is") and the item's unit are dropped
``unit``            same value once a unit is dropped ("2191.7 metres" vs "2191.7", "36\\pi cm^3" vs "36\\pi");
                    spelled-out units are their symbols (metres = m); differing units leave the item
                    undecided (0.5 m vs 50 cm is for a judge). A single letter is a unit only where it cannot
                    be a variable ("4.4 m", "m/s"; never "2n")
``numeric_tol``     the item's absolute tolerance, |gold - pred| <= tol * 1.01 (OlympiadBench's rule)
``numeric_round``   (MMMU) equal after rounding both to 2 decimals
``numeric``         two plain numbers with the same value
``math_verify``     Math-Verify on both (expressions, sets, intervals, tuples, equations, percentages)
``phrase``          (MMMU) a text gold answer found as a whole phrase inside the answer; (every profile) a
                    short sentence that starts with the text gold answer, without negation ("Navin earns the
                    most ..." for "Navin")
``string``          none of the above could compare them: wrong, and *undecided* (a judge may look)

Multiple answers (``meta["is_multiple_answer"]``, or a gold with one answer per line) must all match, as many
as the gold has (a repeated value counts twice); unordered unless ``meta["ordered"]``. Multiple choice is
decided by letter (``mc_letter``), by the option's text (``mc_option_text``), or, when several options are the
answer ("C\\nD"), by the set of letters (``mc_letters``).
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass

from virgo.grade.choices import gold_letter, letter_of, letters_of
from virgo.grade.engine import numeric_value, verify_math
from virgo.grade.norm import (
    clean,
    is_text_answer,
    key,
    parse_plain_number,
    split_answers,
    split_value_unit,
    unit_key,
)
from virgo.grade.profiles import LETTERS, Profile, is_multiple_choice, valid_letters
from virgo.records import Problem

MAX_PARTS = 20  # multi-answer items with more parts than this are compared as one set
MAX_COMPARE_CHARS = 2000  # longer "answers" (runaway boxes) are only compared as exact strings


@dataclass(frozen=True)
class Match:
    correct: bool
    by: str  # the rule or engine that decided (Grade.graded_by)
    decided: bool = True  # False: the rules could not really compare them (judge candidates)
    detail: str | None = None


# --- per-item metadata ------------------------------------------------------------------------------

_ABSENT = {"", "none", "null", "nan", "n/a"}  # how loaders spell a missing value ("None" from OlympiadBench files)


def _entries(value) -> list:
    """Per-answer entries of a metadata field: a list, one value, or a comma-separated string in which an empty
    entry means "none for this answer" (",1e0", "0,"). Missing spellings ("None") are None."""
    if value is None or isinstance(value, bool):
        return []
    items = list(value) if isinstance(value, (list, tuple)) else \
        [value] if isinstance(value, (int, float)) else str(value).split(",")
    out = [None if v is None or str(v).strip().lower() in _ABSENT else v for v in items]
    return [] if all(v is None for v in out) else out


def tolerances(problem: Problem) -> list[float | None]:
    """Absolute tolerances from ``meta["tolerance"]`` or ``meta["error"]`` (number, "1e-1", "1e-2,1e-3", ",1e0")."""
    out: list[float | None] = []
    for v in _entries(problem.meta.get("tolerance", problem.meta.get("error"))):
        if v is None or isinstance(v, (int, float)):
            out.append(None if v is None else float(v))
        else:
            out.append(parse_plain_number(str(v)))
    return out


def units(problem: Problem) -> list[str | None]:
    """Units of the gold answers from ``meta["unit"]`` (one, or comma-separated per answer: ",kg")."""
    return [None if u is None else str(u).strip() for u in _entries(problem.meta.get("unit"))]


def alternatives(problem: Problem) -> list[str]:
    """Accepted gold answers: ``meta["alternatives"]``, or a literal list in the answer (MMMU's ['a', 'b'])."""
    alts = problem.meta.get("alternatives")
    if isinstance(alts, (list, tuple)) and alts:
        return [str(a) for a in alts]
    s = problem.answer.strip()
    if s.startswith("[") and s.endswith("]") and ("'" in s or '"' in s):
        try:
            parsed = ast.literal_eval(s)  # a literal parser only: no names, calls or code
        except (ValueError, SyntaxError):
            parsed = None
        if isinstance(parsed, (list, tuple)) and parsed and all(isinstance(a, (str, int, float)) for a in parsed):
            return [str(a) for a in parsed]
    return [problem.answer]


def gold_parts(problem: Problem, gold: str) -> list[str]:
    answers = problem.meta.get("answers")
    if isinstance(answers, (list, tuple)) and len(answers) > 1:
        return [str(a) for a in answers]
    return split_answers(gold)


# --- one answer ---------------------------------------------------------------------------------------

_LHS = re.compile(r"^\s*[A-Za-z\\][A-Za-z0-9_{}\\ ,.()'^]{0,40}?(?<![<>!\\])=(?!=)")  # "x_0 =", "S.A. ="


# "The area is 9π cm^2", "So the total is 42": a short phrase before the verb is the left-hand side.
_VERBAL_LHS = re.compile(r"^\s*(?:(?:so|thus|therefore|hence),?\s+)?(?:the\s+)?(?:[A-Za-z][A-Za-z'-]*\s+){0,5}?"
                         r"(?:is|are|equals|was|were)\s+(?:(?:equal\s+to|approximately|about|exactly)\s+)?", re.I)


def _rhs(s: str) -> str:
    """``x_0 = 2.27`` -> ``2.27``, ``The area is 9π`` -> ``9π`` (a simple left-hand side only; equations
    stay whole)."""
    c = clean(s)
    for lhs in (_LHS, _VERBAL_LHS):
        m = lhs.match(c)
        rest = c[m.end():].strip() if m else ""
        if rest and "=" not in rest and not _VERBAL_LHS.match(rest):
            return rest.rstrip(".").strip()
    return c


def _drop_unit(s: str, unit: str | None) -> str:
    """``s`` without the item's unit at its end ("2.5 \\mathrm{~m}" -> "2.5"); never half a unit ("5 cm")."""
    if not unit:
        return s
    u = unit_key(unit)
    c = clean(s)
    if u and unit_key(c).endswith(u):
        # Cut the unit off the cleaned string: walk back over as many characters as its key needs.
        for cut in range(len(c) - 1, max(0, len(c) - 4 * len(unit) - 20), -1):
            if unit_key(c[cut:]) == u and not c[cut - 1].isalpha():
                head = c[:cut].rstrip(" \\")
                return head or c
    return c


_NEGATION = re.compile(r"\b(?:not|no|never|neither|nor|none|nobody|cannot)\b|n't", re.I)
_MAX_SENTENCE_WORDS = 15


def _words(s: str) -> str:
    return " ".join(clean(s).casefold().split())


def _phrase_in(gold: str, pred: str) -> bool:
    """The gold answer as a whole phrase inside the predicted one ("Tampa" in "The city is Tampa")."""
    g = _words(gold)
    return bool(g) and re.search(rf"(?<![\w]){re.escape(g)}(?![\w])", _words(pred)) is not None


def _names_first(gold: str, pred: str) -> bool:
    """A short sentence that starts with the text gold answer and goes on about it, without negation:
    "Navin earns the most after working an eight-hour day" for "\\text{Navin}". Not "Navin and Luka ..."."""
    g, p = clean(gold).casefold(), clean(pred).casefold()
    if not p.startswith(g) or len(p) == len(g) or len(p.split()) > _MAX_SENTENCE_WORDS:
        return False
    rest = p[len(g):]
    return rest[0] == " " and rest.split()[0] not in ("and", "or", "nor", "&") and not _NEGATION.search(p)


def compare(gold: str, pred: str, profile: Profile, *, tolerance: float | None = None,
            unit: str | None = None) -> Match:
    """Is ``pred`` the same answer as ``gold``?"""
    if key(gold) == key(pred):
        return Match(True, "exact")
    gold_option = letter_of(gold, LETTERS[:10]) if len(clean(gold)) <= 4 else None
    if gold_option:  # a letter gold outside a multiple-choice item (MATH's "\\text{(C)}")
        return Match(letter_of(pred, LETTERS[:10]) == gold_option, "mc_letter")
    if len(pred) > MAX_COMPARE_CHARS:
        return Match(False, "string", decided=False, detail=f"answer of {len(pred)} characters compared as a string")
    g, p = _rhs(_drop_unit(gold, unit)), _rhs(_drop_unit(pred, unit))
    if key(g) == key(p):  # the same once left-hand sides ("x =", "The area is") and the item's unit are gone
        return Match(True, "exact")
    gs, ps = split_value_unit(g), split_value_unit(p)
    gu, pu = (unit_key(gs[1]) if gs else None), (unit_key(ps[1]) if ps else None)
    if gs and ps and gu != pu and "%" not in (gu, pu):
        return Match(False, "unit", decided=False, detail=f"units differ: {gs[1]!r} vs {ps[1]!r}")
    if gs and gu != "%":
        g = gs[0]
    if ps and pu != "%":
        p = ps[0]
    if (gs or ps) and key(g) == key(p):
        return Match(True, "unit")

    gv, pv = parse_plain_number(g), parse_plain_number(p)
    if tolerance is not None:
        gv = numeric_value(g) if gv is None else gv
        pv = numeric_value(p) if pv is None else pv
        if gv is not None and pv is not None:
            # 1.01: OlympiadBench's own slack for rounding. No absolute epsilon: tolerances go down to 1e-17.
            ok = abs(gv - pv) <= tolerance * 1.01 or math.isclose(gv, pv, rel_tol=1e-12, abs_tol=0.0)
            return Match(ok, "numeric_tol", detail=f"|{gv:g} - {pv:g}| {'<=' if ok else '>'} {tolerance:g}")
    if gv is not None and pv is not None:
        if gv == pv:
            return Match(True, "numeric")
        if profile.round_digits is not None and round(gv, profile.round_digits) == round(pv, profile.round_digits):
            return Match(True, "numeric_round", detail=f"equal to {profile.round_digits} decimals")

    if is_text_answer(gold):
        if profile.phrase_match and _phrase_in(gold, pred):
            return Match(True, "phrase")
        if _names_first(gold, pred):
            return Match(True, "phrase", detail="the answer is a sentence about the gold answer")
        return Match(False, "string", decided=False, detail="text answers differ")

    result = verify_math(g, p)
    if result is None and (g, p) != (gold, pred):
        result = verify_math(gold, pred)
    if result is not None:
        return Match(result, "math_verify")
    if profile.phrase_match and len(key(gold)) >= 2 and _phrase_in(gold, pred):
        return Match(True, "phrase")
    return Match(False, "string", decided=False, detail="not parsed as math; strings differ")


# --- several answers ---------------------------------------------------------------------------------

def compare_multi(golds: list[str], preds: list[str], profile: Profile, *, tols: list[float | None],
                  units_: list[str | None], ordered: bool, gold_text: str, pred_text: str) -> Match:
    """All gold answers must be matched by distinct predicted answers (in order if ``ordered``)."""

    def at(xs: list, i: int):
        if not xs:
            return None
        return xs[i] if len(xs) == len(golds) else xs[0] if len(xs) == 1 else None

    if len(preds) == len(golds) and len(golds) <= MAX_PARTS:
        used: set[int] = set()
        engines: list[str] = []
        undecided = False
        for i, g in enumerate(golds):
            candidates = [i] if ordered else [j for j in range(len(preds)) if j not in used]
            hit = None
            for j in candidates:
                m = compare(g, preds[j], profile, tolerance=at(tols, i), unit=at(units_, i))
                undecided |= not m.decided
                if m.correct:
                    hit = (j, m)
                    break
            if hit is None:
                return Match(False, "multi_answer", decided=not undecided,
                             detail=f"answer {i + 1} of {len(golds)} ({g!r}) not matched")
            used.add(hit[0])
            engines.append(hit[1].by)
        return Match(True, "multi_answer", detail="parts: " + ", ".join(engines))
    # Counts differ: wrong (OlympiadBench's rule; "16, 3, 1" does not answer "16, 3, 1, 1"), unless one side is
    # a single written-out collection ("\\{(1,2), (3,4)\\}") or there are too many parts to pair: then the
    # whole answers are compared, which Math-Verify reads as sets.
    collection = any(len(xs) == 1 and clean(xs[0])[:2].lstrip("\\")[:1] in "{([" for xs in (golds, preds))
    if collection or len(golds) > MAX_PARTS:
        result = verify_math(gold_text, pred_text)
        if result:
            return Match(True, "math_verify", detail="compared as one set")
    return Match(False, "multi_answer", detail=f"{len(preds)} answers given for {len(golds)}")


def compare_choice(problem: Problem, answer: str, profile: Profile) -> Match:
    """A multiple-choice answer (a letter, or an option's text) against the gold option."""
    letters = valid_letters(problem, profile)
    golds, preds = letters_of(problem.answer, letters), letters_of(answer, letters)
    is_letter = len(answer) == 1 and answer in letters
    if golds:  # several options make the answer ("Choose 2 answers", MathVerse's "C\nD"): all, and only those
        given = preds or ([answer] if is_letter else None)
        if given is None:
            return Match(False, "mc_letters", decided=False, detail=f"not a set of option letters (gold {golds})")
        return Match(given == golds, "mc_letters", detail=None if given == golds else f"{given} for {golds}")
    if preds:
        return Match(False, "mc_letters", detail=f"several options given ({', '.join(preds)})")
    gold = gold_letter(problem.answer, letters, problem.choices)
    if gold is None:  # the gold is not an option letter: compare texts (the option text if a letter was given)
        text = problem.choices[LETTERS.index(answer)] if is_letter and problem.choices else answer
        return compare(problem.answer, text, profile)
    if is_letter:
        return Match(answer == gold, "mc_letter")
    if not problem.choices:
        return Match(False, "mc_letter", decided=False, detail="not an option letter; no option texts to compare")
    m = compare(problem.choices[LETTERS.index(gold)], answer, profile)
    if m.correct:
        return Match(True, "mc_option_text", detail=f"as option {gold} ({m.by})")
    for i, c in enumerate(problem.choices):
        if LETTERS[i] != gold and compare(c, answer, profile).correct:
            return Match(False, "mc_option_text", detail=f"the text of option {LETTERS[i]}")
    return Match(False, "mc_option_text", decided=False, detail="matches no option's text")


def judge_answer(problem: Problem, answer: str, answers: tuple[str, ...], profile: Profile) -> Match:
    """Compare an extracted answer with every accepted gold answer of ``problem``; the best match wins."""
    if is_multiple_choice(problem):
        return compare_choice(problem, answer, profile)
    multi = bool(problem.meta.get("is_multiple_answer"))
    tols, units_ = tolerances(problem), units(problem)
    best: Match | None = None
    for gold in alternatives(problem):
        # One answer per line: MathVerse's "-4.9\n-4.9" repeats one answer; different lines are all required.
        lines = list(dict.fromkeys(ln.strip() for ln in gold.splitlines() if ln.strip())) or [gold]
        gold = lines[0] if len(lines) == 1 else gold
        golds = gold_parts(problem, gold) if multi else lines
        if len(golds) > 1:
            preds = list(answers) if len(answers) > 1 else split_answers(answer)
            if len(preds) != len(golds) and len(split_answers(answer)) == len(golds):
                preds = split_answers(answer)  # the same answer boxed twice: its distinct boxes
            m = compare_multi(golds, preds, profile, tols=tols, units_=units_,
                              ordered=bool(problem.meta.get("ordered")), gold_text=gold, pred_text=answer)
        else:
            m = compare(gold, answer, profile, tolerance=tols[0] if tols else None, unit=units_[0] if units_ else None)
        if m.correct:
            return m
        best = best if best is not None and not best.decided else m
    assert best is not None
    return best
