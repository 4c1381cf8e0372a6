"""Gold answers: the per-item metadata that says how to compare, and one normal form for how golds are written.

Metadata (what benchmark loaders put in ``Problem.meta``): absolute tolerances (``tolerance`` / OlympiadBench's
``error``, one per answer), units (``unit``, one per answer), accepted alternatives, the gold's parts.

Normal form (``normalize_answer``, applied to golds and predictions alike): a leading ``=`` dropped
(OlympiadBench writes ``$=1.702 \\times 10^{26}$``), answers written as code translated to LaTeX
(``np.arcsin(10/13)`` -> ``\\arcsin(10/13)``, ``sqrt(3)/2`` -> ``\\sqrt{3}/2``, ``x**2`` -> ``x^2``) -- by string
rewriting, never by running them -- and an approximation sign dropped (``\\approx 3.14``).
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache

from virgo.grade.norm import clean, drop_approx, split_answers
from virgo.records import Problem

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
    from virgo.grade.numbers import parse_plain_number

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


def precision(problem: Problem) -> int | None:
    """MathVista's per-item ``precision`` (decimals of a float answer), if given."""
    p = problem.meta.get("precision")
    try:
        return int(p) if p is not None and str(p).strip().lower() not in _ABSENT else None
    except (TypeError, ValueError):
        return None


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


# --- answers written as code ----------------------------------------------------------------------------

_POWER = re.compile(r"(?<=[\w)])\*\*(?=[-\w(.])")  # x**2, not **bold**
_CODE_HINT = re.compile(r"\b(?:np|numpy|math|sympy|sp|scipy|cmath)\.\w|(?<=[\w)])\*\*(?=[-\w(.])|"
                        r"(?<![\\\w])(?:sqrt|arcsin|arccos|arctan|"
                        r"asin|acos|atan|sinh|cosh|tanh|sin|cos|tan|exp|log|log10|log2|ln|abs|pi)\b")
_MODULE = re.compile(r"\b(?:np|numpy|math|sympy|sp|scipy|cmath)\.")
_FUNC = re.compile(r"(?<![\\\w])(arcsin|arccos|arctan|asin|acos|atan|sinh|cosh|tanh|sin|cos|tan|exp|ln|log10|log2|"
                   r"log|sqrt|abs)\s*\(")
_FUNC_LATEX = {"asin": "\\arcsin", "acos": "\\arccos", "atan": "\\arctan", "log": "\\ln", "log10": "\\log_{10}",
               "log2": "\\log_{2}"}


def _closing_paren(s: str, i: int) -> int | None:
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "(":
            depth += 1
        elif s[j] == ")":
            depth -= 1
            if depth == 0:
                return j
    return None


def code_to_latex(s: str) -> str:
    """An answer written as code, in LaTeX: ``np.arcsin(10/13)`` -> ``\\arcsin(10/13)``, ``sqrt(2)/2`` ->
    ``\\sqrt{2}/2``, ``abs(x)`` -> ``|x|``, ``x**2`` -> ``x^2``, ``pi`` -> ``\\pi``. Pure string rewriting; a
    LaTeX answer (any backslash) is left alone."""
    if "\\" in s or not _CODE_HINT.search(s):
        return s
    s = _POWER.sub("^", _MODULE.sub("", s))
    for _ in range(20):  # each pass rewrites the first remaining call; answers hold a handful
        m = _FUNC.search(s)
        if m is None:
            break
        close = _closing_paren(s, m.end() - 1)
        if close is None:
            return s
        name, arg = m.group(1), s[m.end():close]
        if name == "sqrt":
            new = f"\\sqrt{{{arg}}}"
        elif name == "abs":
            new = f"\\left|{arg}\\right|"
        elif name == "exp":
            new = f"e^{{{arg}}}"
        else:
            new = f"{_FUNC_LATEX.get(name, chr(92) + name)}({arg})"
        s = s[:m.start()] + new + s[close + 1:]
    return re.sub(r"(?<![\\\w])pi\b", r"\\pi ", s).strip()


@lru_cache(maxsize=4096)
def normalize_answer(s: str) -> str:
    """The normal form of an answer, cleaned (``virgo.grade.norm.clean``): code rewritten as LaTeX, no leading
    "=", no approximation sign."""
    t = clean(code_to_latex(s.strip()))
    if t.startswith("="):
        t = t[1:].lstrip()
    return drop_approx(t)
