"""Math-Verify as the engine for LaTeX and plain expressions, sets, intervals, tuples and equations.

Only LaTeX extraction is used: Math-Verify's plain-expression extractor hands matched text to
sympy's ``parse_expr`` (an ``eval`` underneath), which model text must never reach. Plain answers
("3/4", "2x+1") parse as LaTeX just as well. Parsing and verification run without Math-Verify's own
signal-based timeout (it only works in a main thread); callers bound the time by running this in
``virgo.grade.pool`` worker processes.
"""

from __future__ import annotations

import logging
import math
import re
from functools import lru_cache

from virgo.grade.norm import clean

# Longest answer handed to the engine: a multi-hundred-character "answer" is runaway text, and parsing it
# costs close to a second; such answers are compared as strings only.
MAX_PARSE_CHARS = 500
# A one-character sub/superscript braced, as TeX reads it: the engine fails on "m_e" and "x^e" unbraced.
_SCRIPT = re.compile(r"([_^])\s*([A-Za-z0-9])")

logging.getLogger("math_verify").setLevel(logging.ERROR)


@lru_cache(maxsize=1)
def _mv():
    import math_verify

    # The warning about disabled timeouts is expected here: the pool enforces the limit.
    import math_verify.grader
    import math_verify.parser
    from latex2sympy2_extended.math_normalization import NormalizationConfig
    from math_verify import LatexExtractionConfig

    math_verify.parser.TIMEOUT_WARNING_SHOWN = True
    math_verify.grader.TIMEOUT_WARNING_SHOWN = True
    # Math-Verify's defaults, except unit removal: it drops a trailing letter it takes for a unit, so
    # "2 v_0 t" parsed as 2 v_0 and matched "2 v_0". Units are split off before the engine (virgo.grade.norm).
    normalization = NormalizationConfig(basic_latex=True, units=False, malformed_operators=True, nits=True,
                                        boxed="all")
    return math_verify, [LatexExtractionConfig(boxed_match_priority=0, normalization_config=normalization)]


@lru_cache(maxsize=256)
def parse_math(answer: str):
    """Math-Verify's parse of one answer (a tuple of sympy objects), or None if it did not parse to math."""
    s = _SCRIPT.sub(r"\1{\2}", clean(answer))
    if not s or len(s) > MAX_PARSE_CHARS:
        return None
    mv, config = _mv()
    try:
        parsed = mv.parse("\\boxed{" + s + "}", config, parsing_timeout=None)
    except (RecursionError, MemoryError, ValueError, TypeError, OverflowError):
        return None
    exprs = tuple(p for p in parsed if not isinstance(p, str))
    return exprs or None


def verify_math(gold: str, pred: str) -> bool | None:
    """True/False when both answers parse to math and Math-Verify compared them; None when either did not.

    Sets and relations compare both ways (``(-\\infty, 2]`` and ``x \\le 2``), and two equations that differ
    by a nonzero constant factor are the same equation.
    """
    g, p = parse_math(gold), parse_math(pred)
    if g is None or p is None:
        return None
    mv, _ = _mv()
    try:
        if mv.verify(list(g), list(p), timeout_seconds=None, allow_set_relation_comp=_set_against_inequality(g, p)):
            return True
        return _proportional_equations(g, p)
    except (RecursionError, MemoryError, ValueError, TypeError, OverflowError):
        return False


def _set_against_inequality(g: tuple, p: tuple) -> bool:
    """A gold interval or set against a predicted inequality (``x \\le 2`` for ``(-\\infty, 2]``): the only case
    where Math-Verify should turn the relation into a set (for equations that means solving them, which can
    take minutes)."""
    import sympy

    return len(g) == 1 and len(p) == 1 and isinstance(g[0], sympy.Set) and \
        isinstance(p[0], (sympy.core.relational.Relational, sympy.And)) and not isinstance(p[0], sympy.Equality)


def _proportional_equations(g: tuple, p: tuple) -> bool:
    """Both single equations whose ``lhs - rhs`` have a nonzero constant ratio (sympy's ``cancel``, bounded by the
    pool's time limit): ``2x - 2y = 4`` and ``y = x - 2``."""
    import sympy

    if len(g) != 1 or len(p) != 1 or not (isinstance(g[0], sympy.Equality) and isinstance(p[0], sympy.Equality)):
        return False
    dg, dp = g[0].lhs - g[0].rhs, p[0].lhs - p[0].rhs
    if dg.free_symbols != dp.free_symbols or not dg.free_symbols or dp == 0:
        return False
    ratio = sympy.cancel(dg / dp)
    if ratio.is_number:
        return bool(ratio != 0 and ratio.is_finite)
    # Multiplied through by a monomial ("\\frac{\\sin i_1}{\\sin i_2} = \\frac{n_2}{n_1}" for Snell's law): the same
    # equation wherever the factor is not zero.
    return all(_monomial(part) for part in ratio.as_numer_denom())


def _monomial(expr) -> bool:
    import sympy

    return all(f.is_number and f != 0 or not isinstance(f, sympy.Add) and not (isinstance(f, sympy.Pow) and
                                                                             isinstance(f.base, sympy.Add))
               for f in sympy.Mul.make_args(expr))


def numeric_value(answer: str) -> float | None:
    """The real value of an answer that is a closed-form number ("\\frac{\\sqrt2}{2}"), via Math-Verify's parse."""
    parsed = parse_math(answer)
    if not parsed:
        return None
    expr = parsed[0]
    try:
        if not getattr(expr, "is_number", False):
            return None
        value = complex(expr.evalf(30))
    except (TypeError, ValueError, OverflowError, RecursionError, MemoryError, AttributeError, ZeroDivisionError):
        return None
    if abs(value.imag) > 1e-12 * max(1.0, abs(value.real)) or not math.isfinite(value.real):
        return None
    return value.real


def warm_up() -> None:
    """Build Math-Verify's regexes and parser once, so the first real item is not charged for it."""
    verify_math("\\frac{1}{2}", "0.5")
