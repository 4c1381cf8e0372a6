"""A fast, safe reader for the closed forms most answers are: numbers and expressions in + - * / ^, ``\\frac``,
``\\sqrt``, ``\\pi``, ``i``, a few functions, and variables.

Math-Verify parses LaTeX with an ANTLR grammar that costs 10-40 ms an answer, which is most of the grader's time.
This module reads the common cases in well under a millisecond with a recursive-descent parser of its own and
evaluates them with Python's complex arithmetic: variables get the same pseudo-random values on both sides, a few
times over (polynomial identity testing), so ``\\frac{3t}{2}`` and ``\\frac{3}{2} t`` agree and ``2 v_0 t`` and
``2 v_0`` do not. Nothing is executed and no string reaches ``eval`` or sympy: the parser builds no code, only
numbers, and refuses (returns None) anything outside its small grammar, which then goes to Math-Verify. Powers are
bounded, so ``10^{10^{10}}`` is refused rather than computed.

TeX conventions followed: ``\\frac12`` and ``\\sqrt2`` take one-character arguments; ``2\\frac{1}{2}`` (a mixed
number to some, a product to TeX) is refused; two numbers side by side ("2 3") are refused, not multiplied.
"""

from __future__ import annotations

import cmath
import re
import zlib
from dataclasses import dataclass
from functools import lru_cache

MAX_TOKENS = 200
MAX_DEPTH = 40
MAX_EXPONENT = 1000.0
TRIALS = 3
_TOL = 1e-9

_TOKEN = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+|\\[A-Za-z]+|[A-Za-z]|[-+*/^_(){}\[\]])")
_FUNCS = {"\\sin": cmath.sin, "\\cos": cmath.cos, "\\tan": cmath.tan, "\\ln": cmath.log, "\\exp": cmath.exp,
          "\\sinh": cmath.sinh, "\\cosh": cmath.cosh, "\\tanh": cmath.tanh, "\\arcsin": cmath.asin,
          "\\arccos": cmath.acos, "\\arctan": cmath.atan}
_GREEK = {"\\alpha", "\\beta", "\\gamma", "\\delta", "\\epsilon", "\\varepsilon", "\\zeta", "\\eta", "\\theta",
          "\\vartheta", "\\iota", "\\kappa", "\\lambda", "\\mu", "\\nu", "\\xi", "\\rho", "\\sigma", "\\tau",
          "\\upsilon", "\\phi", "\\varphi", "\\chi", "\\psi", "\\omega", "\\Gamma", "\\Delta", "\\Theta",
          "\\Lambda", "\\Xi", "\\Sigma", "\\Phi", "\\Psi", "\\Omega", "\\hbar", "\\ell"}
_MUL = {"*", "\\cdot", "\\times"}


class _Refuse(Exception):
    """Outside the grammar: let Math-Verify read it."""


class _Undefined(Exception):
    """A division by zero or a logarithm of zero at this trial's values."""


@dataclass(frozen=True)
class ClosedForm:
    """Values of an expression at ``TRIALS`` assignments of its variables (one value if it has none)."""

    values: tuple[complex, ...]
    variables: frozenset[str]
    decimal: bool  # written with a decimal number somewhere (an approximation)

    @property
    def is_number(self) -> bool:
        return not self.variables

    @property
    def real(self) -> float | None:
        v = self.values[0]
        return v.real if self.is_number and abs(v.imag) <= _TOL * max(1.0, abs(v.real)) else None


def _var_value(name: str, trial: int) -> complex:
    """A value for a variable at one trial: fixed per name (so both sides agree), positive (answers are about
    lengths, masses and counts: sqrt(R^2) is R) and away from 0 and from integers."""
    h = zlib.crc32(f"{name}:{trial}".encode())
    return complex(0.31 + (h % 10_007) / 10_007 * 2.6)


class _Parser:
    def __init__(self, tokens: list[str], trial: int, overrides: dict[str, tuple[complex, ...]] | None = None):
        self.t = tokens
        self.i = 0
        self.trial = trial
        self.overrides = overrides or {}
        self.variables: set[str] = set()
        self.decimal = False
        self.depth = 0

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise _Refuse
        self.i += 1
        return tok

    def expr(self) -> complex:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Refuse
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            right = self.term()
            value = value + right if op == "+" else value - right
        self.depth -= 1
        return value

    def term(self) -> complex:
        value = self.unary()
        while True:
            tok = self.peek()
            if tok in _MUL:
                self.take()
                value *= self.unary()
            elif tok == "/":
                self.take()
                value = _div(value, self.unary())
            elif tok is not None and self._starts_atom(tok):
                if tok[0].isdigit() or tok[0] == ".":
                    raise _Refuse  # "2 3": two numbers side by side are not a product anyone writes
                value *= self.power()
            else:
                return value

    def unary(self) -> complex:
        tok = self.peek()
        if tok == "-":
            self.take()
            return -self.unary()
        if tok == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self) -> complex:
        base = self.atom()
        if self.peek() == "^":
            self.take()
            exponent = self.script()
            if abs(exponent.real) > MAX_EXPONENT or abs(exponent.imag) > MAX_EXPONENT:
                raise _Refuse  # 10^{10^{10}}: not computed
            try:
                if base == 0:
                    return 0j if exponent.real > 0 else _raise(_Undefined)
                return base ** exponent
            except (OverflowError, ZeroDivisionError):
                raise _Refuse from None
        return base

    def script(self) -> complex:
        """An exponent: a group, or one token (a digit run is read whole: models write 10^12 and mean it)."""
        tok = self.peek()
        if tok == "{":
            return self.group()
        if tok == "-":
            self.take()
            return -self.script()
        return self.atom()

    def group(self) -> complex:
        self.take("{")
        value = self.expr()
        self.take("}")
        return value

    def argument(self) -> complex:
        """A TeX macro argument: a group, or a single character (\\frac12)."""
        tok = self.peek()
        if tok == "{":
            return self.group()
        if tok is not None and tok[0].isdigit():
            self.take()
            if len(tok) > 1:  # "\\frac12" was read as one number token "12": split it as TeX does
                self.t.insert(self.i, tok[1:])
            return complex(float(tok[0]))
        return self.atom()

    def _mixed_number_follows(self) -> bool:
        """A numeric fraction right after a number: ``2\\frac{1}{2}``, ``2\\frac12``."""
        t, i = self.t, self.i
        if i >= len(t) or t[i] != "\\frac":
            return False
        rest = t[i + 1:i + 7]
        if rest[:1] and rest[0][0].isdigit():
            return True
        return len(rest) == 6 and rest[0] == "{" and rest[1].isdigit() and rest[2:4] == ["}", "{"] and \
            rest[4].isdigit() and rest[5] == "}"

    def _starts_atom(self, tok: str) -> bool:
        return tok in ("(", "{") or tok[0].isalnum() or tok[0] == "." or tok in _FUNCS or tok in _GREEK or \
            tok in ("\\pi", "\\frac", "\\sqrt")

    def atom(self) -> complex:
        tok = self.take()
        if tok[0].isdigit() or tok[0] == ".":
            if "." in tok:
                self.decimal = True
            if self._mixed_number_follows():
                raise _Refuse  # 2\\frac{1}{2}: a mixed number or a product, depending on who wrote it
            return complex(float(tok))
        if tok == "(":
            value = self.expr()
            self.take(")")
            return value
        if tok == "{":
            value = self.expr()
            self.take("}")
            return value
        if tok == "\\pi":
            return complex(cmath.pi)
        if tok == "\\frac":
            num = self.argument()
            return _div(num, self.argument())
        if tok == "\\sqrt":
            if self.peek() == "[":
                self.take("[")
                index = self.expr()
                self.take("]")
                radicand = self.argument()
                return radicand ** _div(1, index) if radicand != 0 else 0j
            return cmath.sqrt(self.argument())
        if tok in _FUNCS:
            arg = self.argument() if self.peek() in ("{", "(") else self.power()
            try:
                return _FUNCS[tok](arg)
            except (ValueError, OverflowError, ZeroDivisionError):
                raise _Undefined from None
        if tok == "i":
            return 1j
        if tok.isalpha() or tok in _GREEK:
            return self.variable(tok)
        raise _Refuse

    def variable(self, name: str) -> complex:
        if self.peek() == "_":
            self.take()
            sub = self.take()
            if sub == "{":
                parts = []
                while self.peek() not in ("}", None):
                    part = self.take()
                    if not (part.isalnum() or part in _GREEK or part.replace(".", "").isalnum()):
                        raise _Refuse
                    parts.append(part)
                self.take("}")
                sub = "".join(parts)
            elif not (sub.isalnum() or sub in _GREEK):
                raise _Refuse
            name = f"{name}_{sub}"
        self.variables.add(name)
        if name in self.overrides:
            return self.overrides[name][self.trial]
        return _var_value(name, self.trial)


def _raise(exc: type[Exception]):
    raise exc


def _div(a: complex, b: complex) -> complex:
    if b == 0:
        raise _Undefined
    return a / b


@lru_cache(maxsize=4096)
def _tokens(s: str) -> tuple[str, ...] | None:
    out = []
    pos = 0
    for m in _TOKEN.finditer(s):
        if m.start() != pos:
            return None
        out.append(m.group(1))
        pos = m.end()
    if s[pos:].strip() or len(out) > MAX_TOKENS:
        return None
    return tuple(out)


@lru_cache(maxsize=4096)
def closed_form(s: str) -> ClosedForm | None:
    """The values of ``s`` (a cleaned answer), or None if it is not a closed form this grammar reads."""
    return evaluate(s)


def evaluate(s: str, overrides: dict[str, tuple[complex, ...]] | None = None) -> ClosedForm | None:
    """``closed_form`` with some variables given their values at each trial (a substitution)."""
    tokens = _tokens(s)
    if not tokens:
        return None
    values: list[complex] = []
    variables: frozenset[str] = frozenset()
    decimal = False
    for trial in range(TRIALS):
        p = _Parser(list(tokens), trial, overrides)
        try:
            value = p.expr()
            if p.i != len(p.t):
                return None
        except _Refuse:
            return None
        except _Undefined:
            value = None
        except (OverflowError, ZeroDivisionError, ValueError, RecursionError):
            return None
        variables, decimal = frozenset(p.variables), p.decimal
        if value is not None and not (cmath.isfinite(value)):
            return None
        values.append(value)
        if not variables and not overrides:
            break  # a number has one value
    if all(v is None for v in values):
        return None
    return ClosedForm(tuple(values), variables, decimal)


def same(a: ClosedForm, b: ClosedForm) -> bool | None:
    """True when both have the same values at every trial where both are defined; None when no trial compares
    (different variables, or nothing defined at the same time)."""
    if a.is_number != b.is_number:
        # A constant against an expression in variables: equal only if the expression is that constant at every
        # trial (its variables cancel); otherwise it varies, and differs.
        number, other = (a, b) if a.is_number else (b, a)
        values = [v for v in other.values if v is not None]
        x = number.values[0]
        return bool(values) and all(abs(v - x) <= _TOL * max(1.0, abs(v), abs(x)) for v in values)
    compared = 0
    n = max(len(a.values), len(b.values))
    for k in range(n):
        x = a.values[min(k, len(a.values) - 1)]
        y = b.values[min(k, len(b.values) - 1)]
        if x is None or y is None:
            continue
        compared += 1
        if abs(x - y) > _TOL * max(1.0, abs(x), abs(y)):
            return False
    return True if compared else None


def variable_name(s: str) -> str | None:
    """The name of the variable ``s`` is, if it is one variable and nothing else ("\\omega_{2}", "v_0", "x")."""
    tokens = _tokens(s)
    if not tokens:
        return None
    p = _Parser(list(tokens), 0)
    try:
        first = p.take()
        if not (first.isalpha() or first in _GREEK) or first in ("i", "e"):
            return None
        p.variable(first)
    except (_Refuse, _Undefined):
        return None
    return next(iter(p.variables)) if p.i == len(p.t) and len(p.variables) == 1 else None
