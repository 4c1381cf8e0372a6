"""String normalisation of answers: the cheap, exact part of equivalence.

Everything here is plain string work (linear regexes, no nested-brace regexes, no evaluation), used
by extraction and equivalence alike: unwrap LaTeX decorations, compare case- and space-insensitively,
split multiple answers on top-level commas, and recognise a number with a unit.
"""

from __future__ import annotations

import re

# Text-mode wrappers whose content is the answer (one level, no nested braces: they rarely nest).
_WRAPPERS = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|mbox|operatorname|boxed|fbox)\s*\{([^{}]*)\}")
# Spacing commands; "\\ " after a backslash is a matrix row break (\\\\), not a space.
_SPACING = re.compile(r"(?<!\\)\\[,;:! ]|\\quad|\\qquad|\\displaystyle|\\left(?![a-zA-Z])|\\right(?![a-zA-Z])|~")
_CURRENCY = re.compile(r"^\\?\$(?=\s*[\d.])|\\\$")  # "\$18.90", "$36" (a dollar sign, not a math delimiter)
_DOLLARS = re.compile(r"\$+")
_WS = re.compile(r"\s+")
# Degree spellings, including "掳", the GBK mojibake of "°" found in MathVerse's own answer key.
_DEGREE = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree|°|掳")
_FRAC = re.compile(r"\\[dt]frac")


def sanitize(text: str) -> str:
    """Text that encodes as UTF-8: lone surrogates (from undecodable bytes) become U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def strip_math_delimiters(s: str) -> str:
    """Remove ``$..$``, ``\\(..\\)``, ``\\[..\\]`` around a whole answer, and a stray opener or closer at an end."""
    s = s.strip()
    for a, b in (("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(a) and s.endswith(b) and len(s) >= len(a) + len(b):
            s = s[len(a):-len(b)].strip()
        elif s.endswith(b) and a not in s:  # "8k + 3 \\)": the value started inside the formula
            s = s[:-len(b)].strip()
        elif s.startswith(a) and b not in s:
            s = s[len(a):].strip()
    return _DOLLARS.sub("", s).strip() if "$" in s else s


def clean(s: str) -> str:
    """An answer without math delimiters, spacing commands, text wrappers and trailing punctuation."""
    s = _CURRENCY.sub("", s.strip())
    s = strip_math_delimiters(s)
    s = _FRAC.sub(r"\\frac", s)
    s = _SPACING.sub(" ", s)
    for _ in range(3):  # \text{\textbf{B}}: a few layers at most
        unwrapped = _WRAPPERS.sub(r"\1", s)
        if unwrapped == s:
            break
        s = unwrapped
    s = s.replace("**", "")
    s = _WS.sub(" ", s).strip()
    return s.rstrip(".。").strip()


def key(s: str) -> str:
    """Comparison key for exact matching: cleaned, degrees unified, no whitespace, case-folded."""
    s = _DEGREE.sub("°", clean(s))
    return _WS.sub("", s).casefold()


def split_top_level(s: str, seps: str = ",;") -> list[str]:
    """Split on separators outside (), [], {} (escaped or not): "(1,2), 3" -> ["(1,2)", "3"]."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, c in enumerate(s):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        elif c in seps and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return [p.strip() for p in parts if p.strip()]


def split_answers(s: str) -> list[str]:
    """The parts of a multiple answer: top-level commas/semicolons, and the word "and"."""
    s = clean(s)
    out: list[str] = []
    for part in split_top_level(s):
        out.extend(p.strip() for p in re.split(r"\s+and\s+", part) if p.strip())
    return out


# --- numbers with units ---------------------------------------------------------------------------

_NUMBER = (r"[-+−]?\s*(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?"
           r"(?:\s*(?:\\times|\\cdot|×|\*)\s*10\s*\^\s*\{?\s*[-+−]?\d+\s*\}?|[eE][-+]?\d+)?")
_NUMBER_RE = re.compile(rf"^\s*({_NUMBER})\s*(.*?)\s*$", re.S)
_SCI = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+))(?:(?:\\times|\\cdot|×|\*)10\^\{?([-+]?\d+)\}?|[eE]([-+]?\d+))?$")

# Units a bare letter may stand for; any other single letter after a number is a variable ("2 n").
_KNOWN_UNITS = {
    "m", "cm", "mm", "km", "nm", "µm", "um", "s", "ms", "min", "h", "hr", "hrs", "g", "kg", "mg", "n", "kn", "j",
    "kj", "mj", "ev", "kev", "mev", "gev", "w", "kw", "mw", "v", "kv", "mv", "a", "ma", "k", "hz", "khz", "mhz",
    "pa", "kpa", "mpa", "atm", "mol", "l", "ml", "c", "t", "f", "ω", "°", "%", "°c", "°f", "°t", "rad", "sr",
}
_UNIT_TOKEN = re.compile(r"^[a-zµωΩ°%/·.^{}()\-\d\s*]*$", re.I)
_EXPONENT = re.compile(r"\^\s*\{?\s*-?\s*\d+\s*\}?")


def parse_plain_number(s: str) -> float | None:
    """A plain decimal / scientific number ("1,234.5", "1.3 \\times 10^{35}", "2e-3") as float, else None.

    A tiny hand-written grammar on purpose: answers are never passed to eval or sympify.
    """
    t = _WS.sub("", s.replace("−", "-"))
    if re.fullmatch(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?", t):
        t = t.replace(",", "")
    m = _SCI.fullmatch(t)
    if not m:
        return None
    mant, exp1, exp2 = m.groups()
    exp = exp1 if exp1 is not None else exp2
    try:
        if exp is not None and abs(int(exp)) > 400:
            return None
        return float(mant) * (10.0 ** int(exp)) if exp is not None else float(mant)
    except (ValueError, OverflowError):
        return None


def unit_key(u: str) -> str:
    """Normalised unit spelling: no LaTeX wrappers, spaces, tildes or braces; degrees as °."""
    u = _DEGREE.sub("°", clean(u))
    u = re.sub(r"[\s{}~\\]", "", u).casefold()
    return u[:-1] if u.endswith("°t") else u  # a true bearing (315°T) is in degrees


def split_number_unit(s: str) -> tuple[str, str] | None:
    """("2191.7", "metres") for "2191.7 metres"; None unless the answer is a number plus a unit.

    A unit is a known unit symbol, a word of three or more letters, degrees (° / ^\\circ, optionally
    followed by a bearing letter such as T), percent, or a compound of those (m/s, cm^2, \\mathrm{~m}).
    A single unknown letter is a variable, not a unit: "2 n" is an expression.
    """
    c = clean(s)
    m = _NUMBER_RE.match(c)
    if not m or not re.search(r"\d", m.group(1)):
        return None
    number, rest = m.group(1).strip(), m.group(2).strip()
    if not rest:
        return None
    u = unit_key(rest)
    if not u or not _UNIT_TOKEN.match(_EXPONENT.sub("", u)) or re.search(r"\d", _EXPONENT.sub("", u)):
        return None
    words = [w for w in re.split(r"[/·.*()^\s]+", _EXPONENT.sub("", u).replace("°", " ° ")) if w]
    if not words:
        return None
    for w in words:
        if w in _KNOWN_UNITS or len(w) >= 3 or w in ("°", "%") or (w.startswith("°") and len(w) <= 2):
            continue
        return None
    return number, rest
