"""Numbers as written, with their precision, and the rules that compare them.

``parse_number`` reads a plain decimal or scientific number in every usual spelling -- ``1,234.5``, ``-3``,
``3.3e12``, ``3.3E+12``, ``3.3 \\times 10^{12}``, ``3.3 \\cdot 10^{12}``, ``3.3 x 10^12``, ``3.3·10^12``,
``3.3 × 10^{12}``, ``10^{6}`` -- and records how precisely it was written: its significant figures and the value
of one unit in its last written place (its *quantum*). A tiny hand-written grammar on purpose: answers are never
passed to eval or sympify.

``numbers_match`` decides whether a predicted value is the gold one, in this order:

1. an absolute tolerance of the item (OlympiadBench's ``error``) decides alone;
2. the same value (up to float noise);
3. the profile's relative tolerance, if it sets one (never a flat default: 902 and 901 differ);
4. the gold's written precision: a prediction written more precisely than the gold that rounds to it (0.2381
   for 0.24, 6.02e23 for 6.0 × 10^23). A gold is read as rounded when it has a decimal point or an exponent; an
   integer's trailing zeros (4100) only in a science context (a unit, a tolerance), since in competition maths
   4100 is exact;
5. in a science context (a unit, a tolerance, or a number in scientific notation), the prediction's written
   precision: a prediction of at least ``MIN_SIG_FIGS`` significant figures that the (more precise) gold rounds to
   (0.24 for 0.2381, 6.0 x 10^23 for 6.022 x 10^23).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

MAX_EXPONENT = 400  # 10^400 is no longer a float
MIN_SIG_FIGS = 2  # a rounded prediction must keep at least this many figures to count (science context)
_REL_EPS = 1e-12  # float noise when the same number is written two ways

_MANTISSA = r"(?P<sign>[-+])?\s*(?P<mant>\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d+(?:\.\d*)?|\.\d+)"
_EXPONENT = (r"(?:\s*[eE]\s*(?P<e1>[-+]?\d+)"
             r"|\s*(?:\\times|\\cdot|×|·|\*|x|X)\s*10\s*\^\s*(?:\{\s*(?P<e2>[-+]?\s*\d+)\s*\}|(?P<e3>[-+]?\d+)))?")
_NUMBER = re.compile(rf"{_MANTISSA}{_EXPONENT}")
_POWER_OF_TEN = re.compile(r"(?P<sign>[-+])?\s*10\s*\^\s*(?:\{\s*(?P<e>[-+]?\s*\d+)\s*\}|(?P<e1>[-+]?\d+))")


@dataclass(frozen=True)
class Number:
    """A number as written: its value, whether it was written as an approximation (a decimal point or an
    exponent), its significant figures (an integer's trailing zeros not counted) and its quantum (the value
    of one unit in the last significant place)."""

    value: float
    approximate: bool
    sig: int
    quantum: float
    trailing_zeros: int = 0  # an integer's trailing zeros (4100: 2), which may or may not be significant
    scientific: bool = False  # written with an exponent (3.3e12, 6.0 x 10^23): a measured quantity


def _digits(mant: str) -> tuple[int, int, int]:
    """(significant figures, decimals, trailing zeros of an integer) of a mantissa such as "0.0320", "4100"."""
    digits = mant.replace(",", "")
    if "." in digits:
        whole, frac = digits.split(".", 1)
        stripped = (whole + frac).lstrip("0")
        return len(stripped), len(frac), 0
    stripped = digits.lstrip("0")
    zeros = len(stripped) - len(stripped.rstrip("0"))
    return len(stripped) - zeros, 0, zeros


@lru_cache(maxsize=4096)
def parse_number(s: str) -> Number | None:
    """The number ``s`` spells (whitespace around it allowed), or None if ``s`` is anything else."""
    t = s.strip()
    if not t or len(t) > 60:
        return None
    m = _NUMBER.fullmatch(t)
    if m is None:
        p = _POWER_OF_TEN.fullmatch(t)
        if p is None:
            return None
        exp = int((p.group("e") or p.group("e1")).replace(" ", ""))
        if abs(exp) > MAX_EXPONENT:
            return None
        value = -(10.0 ** exp) if p.group("sign") == "-" else 10.0 ** exp
        return Number(value, False, 1, 10.0 ** exp, scientific=True)
    mant = m.group("mant")
    e = m.group("e1") or m.group("e2") or m.group("e3")
    exp = int(e.replace(" ", "")) if e else 0
    if abs(exp) > MAX_EXPONENT:
        return None
    try:
        value = float(mant.replace(",", "")) * (10.0 ** exp)
    except (ValueError, OverflowError):
        return None
    if not math.isfinite(value):
        return None
    if m.group("sign") == "-":
        value = -value
    sig, decimals, zeros = _digits(mant)
    approximate = "." in mant or e is not None
    quantum = 10.0 ** (exp - decimals + (0 if approximate else zeros))
    return Number(value, approximate, sig, quantum, 0 if approximate else zeros, scientific=e is not None)


def parse_plain_number(s: str) -> float | None:
    """The value of a plain decimal / scientific number, else None."""
    n = parse_number(s)
    return None if n is None else n.value


def same_value(a: float, b: float) -> bool:
    return a == b or math.isclose(a, b, rel_tol=_REL_EPS, abs_tol=0.0)


@dataclass(frozen=True)
class NumericRules:
    """What may make two numbers match beyond equality (from the profile and the item)."""

    tolerance: float | None = None  # the item's absolute tolerance (decides alone)
    rel_tol: float | None = None  # the profile's relative tolerance
    written_precision: bool = True  # a gold written with fewer figures is matched by values that round to it
    science: bool = False  # a unit or a tolerance is about: integer trailing zeros and rounded predictions count
    round_digits: int | None = None  # MMMU: equal after rounding both to this many decimals
    precision: int | None = None  # MathVista's per-item precision: the prediction rounded to this many decimals


def _rounds_to(target: Number, value: float) -> bool:
    """``value`` rounds to ``target`` at the precision ``target`` was written with (ties included)."""
    return abs(value - target.value) <= target.quantum / 2 * (1 + 1e-9)


def _gold_is_rounded(gold: Number, science: bool) -> bool:
    if gold.approximate:
        return gold.sig > 0
    # 4100 read as 41 hundreds: only where measured quantities are about, and never 10, 20 or 100.
    return science and gold.trailing_zeros > 0 and gold.sig >= 2


def numbers_match(gold: Number, pred: Number | float, rules: NumericRules) -> tuple[bool, str, str]:
    """(match, rule, detail) for a predicted number against the gold one. ``pred`` may be a bare value (an exact
    closed form such as 5/21), which counts as infinitely precise."""
    pv = pred.value if isinstance(pred, Number) else pred
    gv = gold.value
    if rules.tolerance is not None:
        # 1.01: OlympiadBench's own slack for rounding. No absolute epsilon: tolerances go down to 1e-17.
        ok = abs(gv - pv) <= rules.tolerance * 1.01 or same_value(gv, pv)
        return ok, "numeric_tol", f"|{gv:g} - {pv:g}| {'<=' if ok else '>'} {rules.tolerance:g}"
    if same_value(gv, pv):
        return True, "numeric", ""
    if rules.precision is not None and round(pv, rules.precision) == round(gv, rules.precision):
        return True, "numeric_round", f"equal to {rules.precision} decimals (the item's precision)"
    if rules.round_digits is not None and round(gv, rules.round_digits) == round(pv, rules.round_digits):
        return True, "numeric_round", f"equal to {rules.round_digits} decimals"
    if rules.rel_tol is not None and abs(gv - pv) <= rules.rel_tol * abs(gv):
        return True, "rel_tol", f"within {rules.rel_tol:g} of the gold value"
    if rules.written_precision:
        # A value in scientific notation is a measured quantity, whatever else the item says.
        science = rules.science or gold.scientific or isinstance(pred, Number) and pred.scientific
        pred_sig = pred.sig if isinstance(pred, Number) and (pred.approximate or pred.trailing_zeros == 0) \
            else math.inf
        if isinstance(pred, Number) and not pred.approximate:
            pred_sig = pred.sig + pred.trailing_zeros  # an integer prediction means every digit it writes
        if _gold_is_rounded(gold, science) and pred_sig > gold.sig and _rounds_to(gold, pv):
            return True, "precision", f"rounds to the gold's {gold.sig} significant figures"
        if science and isinstance(pred, Number) and pred.approximate and pred.sig >= MIN_SIG_FIGS \
                and _gold_more_precise(gold, pred) and _rounds_to(pred, gv):
            return True, "precision", f"the gold rounds to the answer's {pred.sig} significant figures"
    return False, "numeric", f"{gv:g} != {pv:g}"


def _gold_more_precise(gold: Number, pred: Number) -> bool:
    if not gold.approximate and gold.trailing_zeros == 0:
        return True  # an exact integer gold (902) is as precise as it gets
    return gold.quantum < pred.quantum
