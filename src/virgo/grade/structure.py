"""The shape of an answer: left-hand sides, conditions, several assignments, tuples, "or" lists and equations.

* ``rhs``: ``x_0 = 2.27`` -> ``2.27``, ``The area is 9π`` -> ``9π`` (a simple left-hand side only; equations
  stay whole), ``a = b = c`` -> ``c`` when the gold is a value.
* ``strip_condition``: ``x = 3 \\text{ for } x > 0`` -> ``x = 3``, ``\\frac{1}{x}, x \\neq 0`` -> ``\\frac{1}{x}``.
* ``assignments``: ``x = 2, y = 3`` -> [("x", "2"), ("y", "3")]; ``(2, 3)`` -> [(None, "2"), (None, "3")];
  ``x = 2 or x = 3`` -> [("x", "2"), ("x", "3")].
* ``equations_proportional``: ``2x - y + 1 = 0`` and ``y = 2x + 1``, or ``x^2 + y^2 = 1`` and
  ``2x^2 + 2y^2 = 2``: the two sides' differences are proportional by a nonzero constant (checked on the fast
  closed-form reader's values; ``virgo.grade.engine.equations_proportional`` does it symbolically for the rest).
"""

from __future__ import annotations

import re

from virgo.grade.closedform import closed_form, evaluate, variable_name
from virgo.grade.norm import clean, split_top_level

# A left-hand side that names what the value is: a symbol with scripts and arguments ("x_0", "\\eta(2.27)",
# "V_{Be}", "\\Delta \\phi_{CD}", "f(x)"), a few words ("Weekly water intake") or initials ("S.A."); never an
# expression ("n_1 \\sin i_1 = ...", "\\frac{a}{b} = ..."), which makes the answer an equation.
_ACCENT = r"\\(?:tilde|hat|bar|vec|dot|ddot|overline|mathbf|mathcal|mathrm|boldsymbol|bm)\s*\{[^{}]*\}"
_SYMBOL = (rf"(?:\\[A-Za-z]+\s*)?(?:{_ACCENT}|[A-Za-z]|\\[A-Za-z]+)"
           r"(?:\s*[_^]\s*(?:\{(?:[^{}]|\{[^{}]*\})*\}|[A-Za-z0-9]+))*'*(?:\s*\([^()]*\))?")
_LHS = re.compile(rf"^\s*(?:{_SYMBOL}|[A-Za-z][A-Za-z'-]*(?:\s+[A-Za-z][A-Za-z'-]*){{0,4}}|(?:[A-Z]\.)+)\s*"
                  r"(?:=(?!=)|\\approx(?![a-zA-Z])|≈)")
# "The area is 9π cm^2", "So the total is 42": a short phrase before the verb is the left-hand side.
_VERBAL_LHS = re.compile(r"^\s*(?:(?:so|thus|therefore|hence),?\s+)?(?:the\s+)?(?:[A-Za-z][A-Za-z'-]*\s+){0,5}?"
                         r"(?:is|are|equals|was|were)\s+(?:(?:equal\s+to|approximately|about|exactly)\s+)?",
                         re.IGNORECASE)
_RELATION = re.compile(r"(?<![<>!\\])=|<|>|\\[lg]eq?\b|\\neq?\b|\\approx")
_TOP_EQ = re.compile(r"(?<![<>!\\=])=(?!=)")
_TOP_EQ_OR_APPROX = re.compile(r"(?<![<>!\\=])=(?!=)|\\approx(?![a-zA-Z])")


_IN = re.compile(r"^\s*[A-Za-z](?:_\{?\w+\}?)?\s*\\in\s*(?=[\[(\\{]|\\mathbb)")  # "x \in [-2, 7]"


def rhs(s: str) -> str:
    """``x_0 = 2.27`` -> ``2.27``, ``The area is 9π`` -> ``9π``, ``x \\in [-2, 7]`` -> ``[-2, 7]`` (a simple left-hand
    side only)."""
    c = clean(s)
    m = _IN.match(c)
    if m:
        return c[m.end():].strip()
    for lhs in (_LHS, _VERBAL_LHS):
        m = lhs.match(c)
        rest = c[m.end():].strip() if m else ""
        if rest and "=" not in rest and not _VERBAL_LHS.match(rest):
            return rest.rstrip(".").strip()
    return c


def last_member(s: str) -> str | None:
    """The last member of a chain ``A = B = C`` (``C``), or None if ``s`` is not a chain of equalities (a list of
    assignments "x = 2, y = 3" is not one)."""
    if len(split_top_level(s)) > 1:
        return None
    parts = _top_level_split(s, _TOP_EQ_OR_APPROX)
    return parts[-1].strip() if len(parts) >= 2 and parts[-1].strip() else None


def is_relation(s: str) -> bool:
    return bool(_RELATION.search(s))


# --- conditions -------------------------------------------------------------------------------------------

_CONDITION = re.compile(
    r"(?:,|;|\s)\s*(?:\\(?:quad|qquad)\s*)?(?:\(\s*)?(?:for|when|where|if|with|provided|assuming|since)\b.*$"
    r"|,\s*(?:[A-Za-z\\][\w{}\\]*\s*(?:\\neq?|\\[lg]eq?|<|>|\\in)\s*[^,]*)$"
    r"|\s*\(\s*[^()]*(?:\\neq?|\\[lg]eq?|<|>|\\in)[^()]*\)\s*$", re.IGNORECASE)


def strip_condition(s: str) -> str:
    """An answer without a trailing condition or remark: ``x = 3 \\text{ for } x > 0`` -> ``x = 3``,
    ``\\frac{1}{x}, x \\neq 0`` -> ``\\frac{1}{x}``, ``n = 5 (n > 0)`` -> ``n = 5``."""
    c = clean(s)
    m = _CONDITION.search(c)
    if m is None or m.start() == 0:
        return c
    head = c[:m.start()].strip().rstrip(",;").strip()
    return head if head and head.count("(") == head.count(")") else c


# --- assignments, tuples, lists -----------------------------------------------------------------------

_NAME = re.compile(r"^\s*([A-Za-z\\][A-Za-z0-9_{}\\]*(?:\s*\([^()]*\))?)\s*=(?!=)\s*(.+)$", re.DOTALL)
_OR = re.compile(r"\s+(?:or|and)\s+|\s*\\(?:lor|vee)\s*")


def _top_level_split(s: str, sep: re.Pattern) -> list[str]:
    parts, depth, start = [], 0, 0
    i = 0
    while i < len(s):
        c = s[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        elif depth == 0:
            m = sep.match(s, i)
            if m and m.end() > i:
                parts.append(s[start:i])
                start = i = m.end()
                continue
        i += 1
    parts.append(s[start:])
    return parts


def _name_key(name: str) -> str:
    return re.sub(r"[\s{}]|\\(?:mathrm|text|rm)", "", name).casefold()


_MATRIX = re.compile(r"^\\begin\{([pbvBV]?matrix)\}(.*)\\end\{\1\}$", re.DOTALL)
_PM = re.compile(r"\\pm(?![a-zA-Z])")


def assignments(s: str) -> list[tuple[str | None, str]] | None:
    """The parts of a structured answer, each with its name if it is an assignment: ``x = 2, y = 3``,
    ``(2, 3)``, ``x = 2 or x = 3``, ``2, 3``; a matrix or vector row by row (a row of several entries as a tuple);
    ``a \\pm b`` as its two values. None for a single value."""
    c = clean(s)
    if len(c) > 400:
        return None
    m = _MATRIX.match(c)
    if m:
        rows = [r.strip() for r in m.group(2).split("\\\\") if r.strip()]
        cells = [[x.strip() for x in r.split("&")] for r in rows]
        if len(rows) < 2 and not (rows and len(cells[0]) > 1):
            return None
        return [(None, r[0] if len(r) == 1 else f"({', '.join(r)})") for r in cells]
    if len(_PM.findall(c)) == 1 and "," not in c and "=" not in c:
        return [(None, _PM.sub("+", c)), (None, _PM.sub("-", c))]
    if c.startswith("(") and c.endswith(")") and _top_level_split(c[1:-1], re.compile(",")) and \
            len(split_top_level(c)) == 1:
        inner = split_top_level(c[1:-1], ",")
        if len(inner) >= 2:
            return [(None, p) for p in inner]
    parts = [p.strip() for part in split_top_level(c, ",;") for p in _top_level_split(part, _OR) if p.strip()]
    if len(parts) < 2:
        return None
    out = []
    for p in parts:
        m = _NAME.match(p)
        if m and "=" not in m.group(2):
            out.append((_name_key(m.group(1)), m.group(2).strip()))
        else:
            out.append((None, p))
    return out


def pair_parts(gold: list[tuple[str | None, str]], pred: list[tuple[str | None, str]],
               ordered: bool = True) -> list[tuple[str, str]] | None:
    """The (gold value, predicted value) pairs to compare: by name when both sides name every part with the same
    names, else in order; None when the counts differ."""
    if len(gold) != len(pred):
        return None
    gnames, pnames = [n for n, _ in gold], [n for n, _ in pred]
    if None not in gnames and None not in pnames and sorted(gnames) == sorted(pnames) and \
            len(set(gnames)) == len(gnames):
        by_name = dict(pred)
        return [(v, by_name[n]) for n, v in gold]
    return [(g, p) for (_, g), (_, p) in zip(gold, pred)] if ordered else None


# --- equations -------------------------------------------------------------------------------------------

def _difference(eq: str):
    """Values of ``lhs - rhs`` of a one-``=`` equation on the closed-form reader, or None."""
    parts = _top_level_split(clean(eq), _TOP_EQ)
    if len(parts) != 2:
        return None
    lhs, rhs_ = closed_form(parts[0].strip()), closed_form(parts[1].strip())
    if lhs is None or rhs_ is None:
        return None
    variables = lhs.variables | rhs_.variables
    if not variables:
        return None
    # Variables get their values by name at each trial, so the two sides line up trial by trial; a side without
    # variables has one value, repeated.
    n = max(len(lhs.values), len(rhs_.values))
    lv = [lhs.values[min(k, len(lhs.values) - 1)] for k in range(n)]
    rv = [rhs_.values[min(k, len(rhs_.values) - 1)] for k in range(n)]
    return variables, [None if a is None or b is None else a - b for a, b in zip(lv, rv)]


def _sides(eq: str) -> tuple[str, str] | None:
    parts = _top_level_split(clean(eq), _TOP_EQ)
    return (parts[0].strip(), parts[1].strip()) if len(parts) == 2 and all(p.strip() for p in parts) else None


def solves(equation: str, assignment: str) -> bool:
    """``assignment`` ("\\omega_2 = \\sqrt{GM_E / D_2^3}") solves ``equation`` ("\\omega_2^2 D_2^3 = G M_E") for the
    variable it names: substituted, the equation holds at every trial."""
    eq, asg = _sides(equation), _sides(assignment)
    if eq is None or asg is None:
        return False
    name = variable_name(asg[0])
    value = closed_form(asg[1])
    if name is None or value is None or name in value.variables or not value.variables:
        return False
    values = tuple(value.values[min(k, len(value.values) - 1)] for k in range(3))
    if any(v is None for v in values):
        return False
    lhs, rhs_ = evaluate(eq[0], {name: values}), evaluate(eq[1], {name: values})
    if lhs is None or rhs_ is None or name not in lhs.variables | rhs_.variables:
        return False
    checked = 0
    for a, b in zip(lhs.values, rhs_.values):
        if a is None or b is None:
            continue
        checked += 1
        if abs(a - b) > 1e-9 * max(1.0, abs(a), abs(b)):
            return False
    return checked >= 2


def equations_proportional(gold: str, pred: str) -> bool | None:
    """True when both are equations whose ``lhs - rhs`` are proportional by one nonzero constant (the same
    equation rearranged or multiplied through); False when they are readable and not; None when unreadable."""
    g, p = _difference(gold), _difference(pred)
    if g is None or p is None or g[0] != p[0]:
        return None
    ratios = [a / b for a, b in zip(g[1], p[1]) if a is not None and b is not None and abs(b) > 1e-12]
    if len(ratios) < 2:
        return None
    r0 = ratios[0]
    if abs(r0) < 1e-12:
        return False
    return all(abs(r - r0) <= 1e-9 * max(1.0, abs(r0)) for r in ratios[1:])
