"""String normalisation of answers: the cheap, exact part of equivalence.

Everything here is plain string work (linear regexes, no nested-brace regexes, no evaluation), used
by extraction and equivalence alike: unwrap LaTeX decorations, compare case- and space-insensitively,
split multiple answers on top-level commas, and recognise a number with a unit.
"""

from __future__ import annotations

import re

# Text-mode wrappers whose content is the answer (one level, no nested braces: they rarely nest).
_WRAPPERS = re.compile(
    r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|mbox|operatorname|boxed|fbox)\s*\{([^{}]*)\}")
# Spacing commands; "\\ " after a backslash is a matrix row break (\\\\), not a space.
_SPACING = re.compile(r"(?<!\\)\\[,;:! ]|\\quad|\\qquad|\\displaystyle|\\left(?![a-zA-Z])|\\right(?![a-zA-Z])|~")
_CURRENCY = re.compile(r"^\\?\$(?=\s*[\d.])|\\\$")  # "\$18.90", "$36" (a dollar sign, not a math delimiter)
_DOLLARS = re.compile(r"\$+")
_WS = re.compile(r"\s+")
# Degree spellings, including "掳", the GBK mojibake of "°" found in MathVerse's own answer key.
_DEGREE = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree|°|掳")
_FRAC = re.compile(r"\\[dt]frac")
_ORDINAL = re.compile(r"(?<=\d)\s*(?:\^\s*\{\s*(?:st|nd|rd|th)\s*\}|\^\s*(?:st|nd|rd|th)|(?:st|nd|rd|th))(?![a-zA-Z])")


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
    s = _ORDINAL.sub("", s)  # "12^{\\text{th}}" -> "12": an ordinal names its number
    s = _WS.sub(" ", s).strip()
    return s.rstrip(".。").strip()


def key(s: str) -> str:
    """Comparison key for exact matching: cleaned, degrees unified, no whitespace, case-folded."""
    s = _DEGREE.sub("°", clean(s))
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


def split_answers(s: str) -> list[str]:
    """The parts of a multiple answer: top-level commas/semicolons, and the word "and"."""
    s = clean(s)
    out: list[str] = []
    for part in split_top_level(s):
        out.extend(p.strip() for p in re.split(r"\s+and\s+", part) if p.strip())
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


# --- numbers with units ---------------------------------------------------------------------------

_NUMBER = (r"[-+−]?\s*(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?"
           r"(?:\s*(?:\\times|\\cdot|×|\*)\s*10\s*\^\s*\{?\s*[-+−]?\d+\s*\}?|[eE][-+]?\d+)?")
_PLAIN = re.compile(_NUMBER)  # a plain decimal / scientific number (digits checked separately)
_SCI = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+))(?:(?:\\times|\\cdot|×|\*)10\^\{?([-+]?\d+)\}?|[eE]([-+]?\d+))?$")

# Unit symbols of two or more letters (compared case-insensitively); longer words ("metres", "units") count too.
_KNOWN_UNITS = {
    "cm", "mm", "km", "nm", "µm", "μm", "um", "ms", "min", "hr", "hrs", "kg", "mg", "kn", "kj", "mj", "ev", "kev",
    "mev", "gev", "kw", "mw", "kv", "mv", "ma", "hz", "khz", "mhz", "pa", "kpa", "mpa", "atm", "mol", "ml", "rad",
    "sr", "°c", "°f", "°t", "ft", "in", "yd", "mi", "lb", "oz", "mph", "kmh", "cc", "dm", "gal", "kwh",
}
# A single letter after a number is a variable ("2n", "3 k", "2 m g"), except these unit symbols, and only
# when spaced from a plain number ("4.4 m") or part of a compound unit ("m/s", "m^2"). Case matters.
_LETTER_UNITS = set("msghlLNJWVAKTCFΩ")
# Words that end an answer without being its unit ("5 and", "3 only").
_NOT_UNIT_WORDS = {"and", "or", "the", "only", "none", "all", "not", "are", "is", "for", "with", "both", "each",
                   "times", "more", "less", "ways", "than", "of"}
_EXPONENT = re.compile(r"\^\s*\{?\s*[-−]?\s*\d+\s*\}?|[²³]")
_UNIT_ATOM = r"(?:[a-zA-ZµμΩ°%]+(?:\s*(?:\^\s*\{?\s*[-−]?\d+\s*\}?|[²³]))?)"
_UNIT_TAIL = re.compile(rf"{_UNIT_ATOM}(?:\s*(?:/|·|\\cdot|\*|\s)\s*{_UNIT_ATOM})*\s*")
_ATOM_SPLIT = re.compile(r"\s*(/|·|\\cdot|\*|\s)\s*")
UNIT_SCAN_CHARS = 80  # a unit starts within this many characters of the end

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


# Spelled-out units and their symbols, so "2191.7 metres" and "2191.7 m" have the same unit.
_UNIT_NAMES = {
    "m": "metre metres meter meters", "cm": "centimetre centimetres centimeter centimeters",
    "mm": "millimetre millimetres millimeter millimeters", "km": "kilometre kilometres kilometer kilometers",
    "s": "second seconds sec secs", "min": "minute minutes mins", "h": "hour hours hr hrs", "g": "gram grams",
    "kg": "kilogram kilograms kilo kilos", "l": "litre litres liter liters", "ml": "millilitre millilitres "
    "milliliter milliliters", "°": "degree degrees deg", "%": "percent per-cent", "j": "joule joules",
    "n": "newton newtons", "w": "watt watts", "v": "volt volts", "a": "ampere amperes amp amps", "k": "kelvin",
    "pa": "pascal pascals", "hz": "hertz",
}
_UNIT_ALIAS = {name: sym for sym, names in _UNIT_NAMES.items() for name in names.split()}
_UNIT_WORD = re.compile(r"[a-z][a-z-]*")


def unit_key(u: str) -> str:
    """Normalised unit spelling: no LaTeX wrappers, spaces, tildes or braces; degrees as °; names as symbols."""
    u = re.sub(r"\s+per\s+", "/", _DEGREE.sub("°", clean(u)).casefold())  # "metres per second" = "m/s"
    u = _UNIT_WORD.sub(lambda m: _UNIT_ALIAS.get(m.group(0), m.group(0)), u)
    u = re.sub(r"[\s{}~\\]", "", u)
    return u[:-1] if u.endswith("°t") else u  # a true bearing (315°T) is in degrees


def _unit_ok(unit: str, head: str, spaced: bool) -> bool:
    """Whether ``unit`` (the tail after ``head``) is a unit rather than variables or prose."""
    unit = re.sub(r"\s+(?=\^|[²³])", "", unit.strip())  # "units ^2": the exponent belongs to the word
    atoms = [a for a in _ATOM_SPLIT.split(unit) if a.strip() and not _ATOM_SPLIT.fullmatch(a)]
    joined = bool(re.search(r"/|·|\\cdot|\*", unit)) or bool(_EXPONENT.search(unit))
    for atom in atoms:
        word = _EXPONENT.sub("", atom).strip()
        low = word.casefold()
        if not word:
            return False
        if word in ("°", "%") or (word.startswith("°") and len(word) <= 2):
            continue
        if len(word) == 1:
            # "4.4 m", "3 m/s", "9 cm^2"; not "2n", "3 k" or "2 m g" (products of variables).
            if word not in _LETTER_UNITS or not (joined or (spaced and len(atoms) == 1 and _PLAIN.fullmatch(head))):
                return False
            continue
        if low in _NOT_UNIT_WORDS or not (low in _KNOWN_UNITS or len(word) >= 3):
            return False
    return bool(atoms)


def split_value_unit(s: str) -> tuple[str, str] | None:
    """(value, unit) for an answer that ends in a unit: "2191.7 metres", "36\\pi \\mathrm{cm}^3",
    "\\frac{1225\\pi}{2} \\text{ units}^2", "315^\\circ T", "4.4 m"; None when there is no unit.

    A unit is a known unit symbol, a word of three or more letters, degrees (optionally followed by a
    bearing letter), percent, or a compound of those (m/s, cm^2). A single letter is a unit only in a
    compound or spaced after a plain number, and only if it is a usual unit symbol: "2n", "3 k" and
    "2 m g" are expressions.
    """
    c = _DEGREE.sub("°", clean(s)).replace("\\%", "%")
    c = re.sub(r"°\s*([NSEWT])\b", r"°\1", c)  # a bearing: "315° T" is one unit
    if not re.search(r"\d", c):
        return None
    for start in range(max(1, len(c) - UNIT_SCAN_CHARS), len(c)):
        before = c[start - 1]
        if not (before.isspace() or before.isdigit() or before in "})°" or c[start] in "°%"):
            continue
        if not _UNIT_TAIL.fullmatch(c, start):
            continue
        head, unit = c[:start].strip(), c[start:].strip()
        if not head or not re.search(r"[\d\\]", head) or re.search(r"[-+*/=^_(,]$", head):
            continue
        if _unit_ok(unit, head, before.isspace()):
            return head, unit
    return None
