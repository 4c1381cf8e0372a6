"""Answer text normalisation: one spelling for what models and answer keys write in many ways.

``normalize`` maps full-width punctuation (``，（B）：``) to ASCII, Unicode sub- and superscripts to TeX
(``E₁`` -> ``E_{1}``, ``m²`` -> ``m^{2}``, ``10⁻³`` -> ``10^{-3}``), Unicode math symbols to their LaTeX commands
(``≤ √ ∞ ± π``) and thousands separators written with TeX spacing (``1{,}000``, ``32,\\!348``) to plain ones.
``clean`` then strips math delimiters, spacing commands, text wrappers, bold and trailing punctuation; ``key``
is the exact-match key (case-, space- and degree-spelling-insensitive). Multiple answers are split on top-level
commas / semicolons and the words "and" / "or". All of it is linear string work.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Text-mode wrappers whose content is the answer (one level, no nested braces: they rarely nest).
_WRAPPERS = re.compile(
    r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|mbox|operatorname|boxed|fbox|bm|boldsymbol|emph)"
    r"\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
# Spacing commands; "\\ " after a backslash is a matrix row break (\\\\), not a space.
_SPACING = re.compile(r"(?<!\\)\\[,;:! ]|\\(?:q?quad|displaystyle|textstyle|left|right)(?![a-zA-Z])|~")
_CURRENCY = re.compile(r"^\\?\$(?=\s*[\d.])|\\\$")  # "\$18.90", "$36" (a dollar sign, not a math delimiter)
_DOLLARS = re.compile(r"\$+")
_WS = re.compile(r"\s+")
# Degree spellings, including "掳", the GBK mojibake of "°" found in MathVerse's own answer key.
_DEGREE = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree|°|掳")
_FRAC = re.compile(r"\\[dt]frac")
_ORDINAL = re.compile(r"(?<=\d)\s*(?:\^\s*\{\s*(?:st|nd|rd|th)\s*\}|\^\s*(?:st|nd|rd|th)|(?:st|nd|rd|th))(?![a-zA-Z])")
# Thousands separators in TeX spacing: "1{,}000", "32,\\!348", "1\\,000" -> "1,000" / "1000".
_TEX_THOUSANDS = re.compile(r"(?<=\d)(?:\{,\}|,\\!\s*|,\\,\s*)(?=\d{3}(?!\d))")
_THIN_THOUSANDS = re.compile(r"(?<=\d)\\[,!](?=\d{3}(?!\d))")
# "\approx 3.14", "≈ 3.14", "~3.14", "about 3.14": the approximation sign is not part of the value.
_APPROX = re.compile(r"^(?:\\approx|≈|\\sim|~|approx\.?|approximately|about|around|roughly|circa)\s*", re.IGNORECASE)

# Full-width forms (U+FF01..U+FF5E) are ASCII shifted by 0xFEE0; the ideographic punctuation a model writes too.
_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_FULLWIDTH.update({0x3000: 0x20, 0x3001: 0x2C, 0x2212: 0x2D, 0x2013: 0x2D, 0x00A0: 0x20, 0x2009: 0x20,
                   0x202F: 0x20, 0x2217: 0x2A, 0x2044: 0x2F})
_FULLWIDTH_ANY = re.compile("[" + "".join(map(chr, sorted(_FULLWIDTH))) + "]")
_SUPER = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱ", "0123456789+-=()ni"))
_SUB = dict(zip("₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₒₓₕₖₗₘₙₚₛₜ", "0123456789+-=()aeoxhklmnpst"))

_SYMBOLS = {"≤": r"\le ", "≥": r"\ge ", "≠": r"\ne ", "≈": r"\approx ", "±": r"\pm ", "∓": r"\mp ", "∞": r"\infty ",
            "∪": r"\cup ", "∩": r"\cap ", "∈": r"\in ", "⋅": r"\cdot ", "→": r"\to ", "π": r"\pi ", "θ": r"\theta ",
            "α": r"\alpha ", "β": r"\beta ", "γ": r"\gamma ", "λ": r"\lambda ", "ω": r"\omega ", "μ": r"\mu ",
            "Δ": r"\Delta ", "ρ": r"\rho ", "σ": r"\sigma ", "φ": r"\phi ", "τ": r"\tau ", "ε": r"\varepsilon ",
            "η": r"\eta ", "Ω": r"\Omega "}
_UNICODE_MATH = re.compile(f"[{''.join(_SUPER)}]+|[{''.join(_SUB)}]+|[{''.join(_SYMBOLS)}]")
_SQRT = re.compile(r"√\s*(\{[^{}]*\}|\([^()]*\)|\\?[A-Za-z0-9.]+)")


def sanitize(text: str) -> str:
    """Text that encodes as UTF-8: lone surrogates (from undecodable bytes) become U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _sqrt(m: re.Match) -> str:
    arg = m.group(1)
    if arg[0] in "{(":
        arg = arg[1:-1]
    return f"\\sqrt{{{arg}}}"


def normalize(s: str) -> str:
    """Full-width punctuation, Unicode scripts and math symbols, and TeX thousands separators, in ASCII TeX.

    Only what has one reading changes ("μ" stays a Greek letter; it becomes a micro prefix only in a unit).
    """
    if not s.isascii():
        if _FULLWIDTH_ANY.search(s):
            s = s.translate(_FULLWIDTH)
        if not s.isascii():
            s = _SQRT.sub(_sqrt, s) if "√" in s else s
            s = _UNICODE_MATH.sub(_unicode_math, s)  # one pass for scripts and symbols
    if "{,}" in s or ",\\" in s:
        s = _TEX_THOUSANDS.sub(",", s)
    if "\\," in s or "\\!" in s:
        s = _THIN_THOUSANDS.sub("", s)
    return s


def _unicode_math(m: re.Match) -> str:
    t = m.group()
    if t[0] in _SUPER:
        return "^{" + "".join(_SUPER[c] for c in t) + "}"
    if t[0] in _SUB:
        return "_{" + "".join(_SUB[c] for c in t) + "}"
    return _SYMBOLS[t]


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


@lru_cache(maxsize=4096)
def clean(s: str) -> str:
    """An answer without math delimiters, spacing commands, text wrappers and trailing punctuation."""
    s = _CURRENCY.sub("", normalize(s.strip()))
    s = strip_math_delimiters(s)
    s = _FRAC.sub(r"\\frac", s)
    s = _SPACING.sub(" ", s)
    for _ in range(3):  # \text{\textbf{B}}: a few layers at most
        unwrapped = _WRAPPERS.sub(_unwrap, s)
        if unwrapped == s:
            break
        s = unwrapped
    s = s.replace("**", "")
    s = _ORDINAL.sub("", s)  # "12^{\\text{th}}" -> "12": an ordinal names its number
    s = _WS.sub(" ", s).strip()
    return s.rstrip(".。").strip()


_ONE_CHAR_SCRIPT = re.compile(r"([_^])\{\s*(\w)\s*\}")
_COMMAND_END = re.compile(r"\\[a-zA-Z]+$")


def _unwrap(m: re.Match) -> str:
    """A wrapper's content; after a command ("\\mu\\mathrm{m}") a space keeps the two apart ("\\mu m")."""
    before = m.string[max(0, m.start() - 12):m.start()]
    return (" " if _COMMAND_END.search(before) else "") + m.group(1)


def drop_approx(s: str) -> str:
    """``\\approx 3.14`` -> ``3.14``: a value stated as approximate is compared as the value."""
    return _APPROX.sub("", s, count=1) if s and s[0] in "\\≈~aArRcC" else s


@lru_cache(maxsize=4096)
def key(s: str) -> str:
    """Comparison key for exact matching: cleaned, degrees unified, no whitespace, case-folded."""
    s = _DEGREE.sub("°", clean(s))
    s = _ONE_CHAR_SCRIPT.sub(r"\1\2", s) if "{" in s else s  # "4210_{5}" is "4210_5"
    return _WS.sub("", s).casefold()


def is_text_answer(s: str) -> bool:
    """A word or phrase answer ("Evelyn", "\\text{east}"), which Math-Verify would read as a product of symbols."""
    c = clean(s)
    return bool(re.fullmatch(r"[A-Za-z][A-Za-z'\- ]*", c)) and (" " in c or len(c) >= 4 or "\\text" in s)


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


_CONJUNCTION = re.compile(r"\s+(?:and|or)\s+|\s*\\(?:text|mathrm)\s*\{\s*(?:and|or)\s*\}\s*|\s*\\(?:lor|vee)\s*")


def split_answers(s: str) -> list[str]:
    """The parts of a multiple answer: top-level commas/semicolons, and the words "and" / "or"."""
    s = clean(s)
    out: list[str] = []
    for part in split_top_level(s):
        out.extend(p.strip() for p in _CONJUNCTION.split(part) if p.strip())
    return out


def dedupe(answers) -> list[str]:
    """Answers without repeats (compared by ``key``), in order of first appearance."""
    seen: set[str] = set()
    out = []
    for a in answers:
        k = key(a)
        if k and k not in seen:
            seen.add(k)
            out.append(a)
    return out
