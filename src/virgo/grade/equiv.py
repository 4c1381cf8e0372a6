"""Equivalence of an extracted answer with the gold answer, beyond what Math-Verify knows.

Both answers are first put in one normal form (``virgo.grade.golds.normalize_answer``: code-like golds as LaTeX,
no leading "=", no approximation sign; ``virgo.grade.norm``: full-width punctuation, Unicode scripts, LaTeX
spacing). Then, for one answer, the first check that decides wins and names itself in ``graded_by``:

``exact``            same normalised string (case, spaces, ``$``, ``\\text{}``, degree spellings ignored), also once a
                     left-hand side ("x_0 =", "S.A. =", "The area is"), a trailing condition ("for x > 0") and the
                     item's unit are dropped
``unit``             units that measure different things (m/s for m/s^2: wrong), or the same value once a unit is
                     dropped ("2191.7 metres" vs "2191.7"); units pint cannot read and that differ leave the item
                     undecided
``unit_conversion``  the same quantity in another unit of the same dimension (50 cm for 0.5 m), if the profile
                     counts conversions
``numeric_tol``      the item's absolute tolerance, |gold - pred| <= tol * 1.01 (OlympiadBench's rule)
``numeric_round``    equal after rounding both to the profile's (MMMU) or the item's (MathVista) decimals
``rel_tol``          the profile's relative tolerance
``precision``        a value that rounds to the gold as written (0.2381 for 0.24; see ``virgo.grade.numbers``)
``numeric``          two numbers with the same value (or, decided wrong, different values)
``closed_form``      closed forms with the same value, or the same values at random points (fast reader)
``phrase``           (MMMU) a text gold answer found as a whole phrase inside the answer; (every profile) a short
                     sentence that starts with the text gold answer, without negation
``structure``        several parts compared part by part: assignments against a tuple (``x = 2, y = 3`` for
                     ``(2, 3)``), by name, or as an unordered "or" list (``x = 2 or x = 3`` for ``2, 3``)
``equation``         two equations whose sides' differences are proportional (the same equation rearranged or
                     multiplied through)
``math_verify``      Math-Verify on both (expressions, sets, intervals against inequalities, tuples, equations)
``string``           none of the above could compare them: wrong, and *undecided* (a judge may look)

Multiple answers (``meta["is_multiple_answer"]``, or a gold with one answer per line) must all match, as many
as the gold has (a repeated value counts twice); unordered unless ``meta["ordered"]``. Multiple choice is
decided by letter (``mc_letter``), by the option's text (``mc_option_text``), or, when several options are the
answer ("C\\nD"), by the set of letters (``mc_letters``).
"""

from __future__ import annotations

import re

from virgo.grade.choices import gold_letter, letter_of, letters_of
from virgo.grade.engine import numeric_value, verify_math
from virgo.grade.golds import alternatives, gold_parts, normalize_answer, precision, tolerances, units
from virgo.grade.match import Match
from virgo.grade.norm import clean, is_text_answer, key, split_answers
from virgo.grade.profiles import LETTERS, Profile, is_multiple_choice, valid_letters
from virgo.grade.quantity import ItemRules, compare_quantity
from virgo.grade.structure import (
    assignments,
    equations_proportional,
    is_relation,
    last_member,
    pair_parts,
    rhs,
    solves,
    strip_condition,
)
from virgo.grade.units import unit_key
from virgo.records import Problem

__all__ = ["Match", "alternatives", "compare", "compare_choice", "compare_multi", "judge_answer", "tolerances",
           "units"]

MAX_PARTS = 20  # multi-answer items with more parts than this are compared as one set
MAX_COMPARE_CHARS = 2000  # longer "answers" (runaway boxes) are only compared as exact strings
_DEGREE = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree")
_NEGATION = re.compile(r"\b(?:not|no|never|neither|nor|none|nobody|cannot)\b|n't", re.IGNORECASE)
_MAX_SENTENCE_WORDS = 15


def _drop_unit(c: str, unit: str | None) -> str:
    """``c`` without the item's unit at its end ("2.5 \\mathrm{~m}" -> "2.5"); never half a unit ("5 cm")."""
    if not unit:
        return c
    u = unit_key(unit)
    if u and unit_key(c).endswith(u):
        c = _DEGREE.sub("°", c)  # one character, so a cut never falls inside "^{\\circ}"
        # Cut the unit off the cleaned string: walk back over as many characters as its key needs.
        for cut in range(len(c) - 1, max(0, len(c) - 4 * len(unit) - 20), -1):
            if unit_key(c[cut:]) == u and not c[cut - 1].isalpha() and c[cut - 1] not in "^_{\\":
                head = c[:cut].rstrip(" \\")
                return head or c
    return c


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


def compare(gold: str, pred: str, profile: Profile, *, tolerance: float | None = None, unit: str | None = None,
            precision: int | None = None) -> Match:
    """Is ``pred`` the same answer as ``gold``?"""
    if key(gold) == key(pred):
        return Match(True, "exact")
    gold_option = letter_of(gold, LETTERS[:10]) if len(clean(gold)) <= 4 else None
    if gold_option:  # a letter gold outside a multiple-choice item (MATH's "\\text{(C)}")
        return Match(letter_of(pred, LETTERS[:10]) == gold_option, "mc_letter")
    if len(pred) > MAX_COMPARE_CHARS:
        return Match(False, "string", decided=False, detail=f"answer of {len(pred)} characters compared as a string")
    g0, p0 = normalize_answer(gold), normalize_answer(pred)
    if strip_condition(g0) == g0:
        p0 = strip_condition(p0)  # "x = 3 for x > 0": the gold states no condition
    g, p = rhs(_drop_unit(g0, unit)), rhs(_drop_unit(p0, unit))
    if key(g) == key(p) or key(g0) == key(p0):  # the same once left-hand sides and the item's unit are gone
        return Match(True, "exact")
    item = ItemRules(tolerance, unit, precision)
    m = compare_quantity(g, p, profile, item)
    if m is not None:
        return m
    if tolerance is not None:  # closed forms the fast reader refused: Math-Verify's value of each
        gv, pv = numeric_value(g), numeric_value(p)
        if gv is not None and pv is not None:
            ok = abs(gv - pv) <= tolerance * 1.01
            return Match(ok, "numeric_tol", detail=f"|{gv:g} - {pv:g}| {'<=' if ok else '>'} {tolerance:g}")

    if is_text_answer(gold):
        if profile.phrase_match and _phrase_in(gold, pred):
            return Match(True, "phrase")
        if _names_first(gold, pred):
            return Match(True, "phrase", detail="the answer is a sentence about the gold answer")
        return Match(False, "string", decided=False, detail="text answers differ")

    m = _compare_structure(g0, p0, profile, item)
    if m is not None:
        return m
    if not is_relation(g):
        last = last_member(p)  # "\\sin^2 x + \\cos^2 x = 1": the value it arrives at
        if last is not None:
            m = compare_quantity(g, last, profile, item)
            if m is not None and m.correct:
                return m
    result = verify_math(g, p)
    # A left-hand side dropped from one side only ("y = 2x + 1" against "2x - y + 1 = 0"): the whole equations.
    if result is None and (g, p) != (g0, p0) or not result and (g == g0) != (p == p0) and is_relation(g0) and \
            is_relation(p0):
        result = verify_math(g0, p0) or result
    if result is not None:
        return Match(result, "math_verify")
    if profile.phrase_match and len(key(gold)) >= 2 and _phrase_in(gold, pred):
        return Match(True, "phrase")
    return Match(False, "string", decided=False, detail="not parsed as math; strings differ")


def _compare_structure(g: str, p: str, profile: Profile, item: ItemRules) -> Match | None:
    """Answers of several parts (assignments, tuples, "or" lists), and equations rearranged or scaled."""
    if "=" in g and "=" in p:
        if equations_proportional(g, p):
            return Match(True, "equation", detail="the same equation, rearranged or multiplied through")
        if solves(g, p):  # not the other way: y^2 = (2x+1)^2 holds for y = 2x + 1 but says more
            return Match(True, "equation", detail="the gold equation, solved for one of its variables")
    ga, pa = assignments(g), assignments(p)
    if ga is None or pa is None or len(ga) > MAX_PARTS:
        return None
    # Tuples and distinct names fix each part's place; a plain list or an "or" list of one variable's values
    # (x = 2 or x = 3) does not.
    ordered = g.startswith("(") or p.startswith("(") or (_distinct_names(ga) and _distinct_names(pa))
    pairs = pair_parts(ga, pa, ordered=True)
    if pairs is None:
        return None
    if ordered:
        matches = [compare(gv, pv, profile, tolerance=item.tolerance, unit=item.unit) for gv, pv in pairs]
        ok = all(m.correct for m in matches)
        if not ok and all(m.decided for m in matches):  # a tuple's parts in their places, each decided
            wrong = next(i for i, m in enumerate(matches) if not m.correct)
            return Match(False, "structure", detail=f"part {wrong + 1} of {len(pairs)} differs")
    else:  # "x = 2 or x = 3" for "2, 3": the same values in any order
        golds, preds = [gv for _, gv in ga], [pv for _, pv in pa]
        ok = _match_unordered(golds, preds, profile, item)
    return Match(True, "structure", detail=f"{len(pairs)} parts") if ok else None


def _distinct_names(parts: list[tuple[str | None, str]]) -> bool:
    names = [n for n, _ in parts]
    return None not in names and len(set(names)) == len(names)


def _match_unordered(golds: list[str], preds: list[str], profile: Profile, item: ItemRules) -> bool:
    used: set[int] = set()
    for gv in golds:
        hit = next((j for j, pv in enumerate(preds) if j not in used and
                    compare(gv, pv, profile, tolerance=item.tolerance, unit=item.unit).correct), None)
        if hit is None:
            return False
        used.add(hit)
    return True


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
    tols, units_, digits = tolerances(problem), units(problem), precision(problem)
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
            m = compare(gold, answer, profile, tolerance=tols[0] if tols else None,
                        unit=units_[0] if units_ else None, precision=digits)
        if m.correct:
            return m
        best = best if best is not None and not best.decided else m
    assert best is not None
    return best
