"""Units of measurement: find the unit at the end of an answer, and read it with pint.

``split_value_unit`` finds a unit after a value ("2191.7 metres", "36\\pi \\mathrm{cm}^3", "3.3 \\times 10^{12}
\\mathrm{~m}", "4.4 m", "315^\\circ T"); a single letter is a unit only where it cannot be a variable (spaced after a
plain number, or in a compound such as m/s or m^2), so "2n" and "2 m g" stay expressions.

``parse_unit`` turns a unit as models and answer keys write it -- LaTeX (``\\mathrm{~m} / \\mathrm{s}^{2}``,
``\\frac{\\mathrm{kg}}{\\mathrm{m}^{3}}``, ``\\mu \\mathrm{m}``, ``^{\\circ}\\mathrm{C}``, ``\\Omega``, ``\\AA``),
plain text (``kcal m^-2 yr^-1``, ``J/(mol K)``, ``kilometers per hour``, ``square centimeters``) or Unicode
(``m·s⁻¹``, ``µm``, ``Ω``) -- into a product of pint unit names with integer exponents, looked up one name at a
time in pint's registry (its expression parser is never given the text). The result carries the unit's size in
SI base units and its dimensionality, so 50 cm and 0.5 m compare, and m/s against m/s^2 is a different quantity.
Angles and ratios (percent) are dimensionless in pint; they are kept apart from each other and from plain
numbers by a ``kind``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

from virgo.grade.norm import clean

_DEGREE = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree|°|掳")
_WS = re.compile(r"\s+")

# --- where a unit starts -------------------------------------------------------------------------------

_NUMBER_HEAD = re.compile(r"[-+]?\s*(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?"
                          r"(?:\s*(?:\\times|\\cdot|×|·|\*|x)\s*10\s*\^\s*\{?\s*[-+]?\d+\s*\}?|[eE][-+]?\d+)?")
# Unit symbols of two letters that are not English words (longer words ("metres", "units") count too).
_KNOWN_UNITS = {
    "cm", "mm", "km", "nm", "µm", "μm", "um", "ms", "min", "hr", "hrs", "kg", "mg", "kn", "kj", "mj", "ev", "kev",
    "mev", "gev", "kw", "mw", "kv", "mv", "ma", "hz", "khz", "mhz", "pa", "kpa", "mpa", "atm", "mol", "ml", "rad",
    "sr", "°c", "°f", "°t", "ft", "in", "yd", "mi", "lb", "oz", "mph", "kmh", "cc", "dm", "gal", "kwh", "yr", "ly",
    "au", "pc", "fm", "pm", "ns", "ps", "μs", "µs", "us", "nf", "pf", "μf", "uf", "mh", "kk", "wb", "ohm",
}
# A single letter after a number is a variable ("2n", "3 k", "2 m g"), except these unit symbols, and only
# when spaced from a plain number ("4.4 m") or part of a compound unit ("m/s", "m^2"). Case matters.
_LETTER_UNITS = set("msghlLNJWVAKTCFMΩ")  # M: molar (mol/L)
_COMPOUND_LETTERS = _LETTER_UNITS | {"c"}  # GeV/c: the speed of light, only inside a compound unit
# Words that end an answer without being its unit ("5 and", "3 only").
_NOT_UNIT_WORDS = {"and", "or", "the", "only", "none", "all", "not", "are", "is", "for", "with", "both", "each",
                   "times", "more", "less", "ways", "than", "of", "as", "at", "am", "an", "by", "on", "it", "if",
                   "be", "we", "so", "no", "do", "to", "up", "us"}
_EXPONENT = re.compile(r"\^\s*\{?\s*[-−]?\s*\d+\s*\}?|[²³]")
_UNIT_ATOM = r"(?:[a-zA-ZµμΩÅℓ°%]+(?:\s*(?:\^\s*\{?\s*[-−]?\d+\s*\}?|[²³]))?)"
_UNIT_TAIL = re.compile(rf"{_UNIT_ATOM}(?:\s*(?:/|·|\\cdot|\*|\s)\s*\(?\s*{_UNIT_ATOM}\s*\)?)*\s*")
_ATOM_SPLIT = re.compile(r"\s*(/|·|\\cdot|\*|\s|\(|\))\s*")
UNIT_SCAN_CHARS = 80  # a unit starts within this many characters of the end


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
        if word in ("°", "%", "Å", "Ω") or (word.startswith("°") and len(word) <= 2):
            continue
        if len(word) == 1:
            # "4.4 m", "3 m/s", "9 cm^2"; not "2n", "3 k" or "2 m g" (products of variables).
            if not (word in _COMPOUND_LETTERS and joined and len(atoms) > 1 or word in _LETTER_UNITS and
                    (joined or spaced and len(atoms) == 1 and _NUMBER_HEAD.fullmatch(head))):
                return False
            continue
        if low in _NOT_UNIT_WORDS or not (low in _KNOWN_UNITS or len(word) >= 3 or _pint_name(word)):
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
    c = _DEGREE.sub("°", _frac_units(clean(s))).replace("\\%", "%")
    c = _UNIT_MACROS.sub(lambda m: _MACRO_SYMBOL[m.group(1)], c) if "\\" in c else c
    c = re.sub(r"°\s*([NSEWTCF])\b", r"°\1", c)  # a bearing "315° T" and "25 °C" are one unit each
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


# Unit macros after a number: "28.1 \\mu m", "4.4 \\AA", "2 \\Omega" (a \\mu elsewhere is a Greek letter).
_MACRO_SYMBOL = {"mu": "µ", "AA": "Å", "Omega": "Ω", "ohm": "Ω"}
_UNIT_MACROS = re.compile(r"(?<=[\d}.])\s*\\(mu|AA|Omega|ohm)(?![a-zA-Z])\s*"
                          r"(?=(?:m|s|g|A|C|F|H|L|l|J|V|W|T|K|N|Pa|mol|M)(?![a-zA-Z])|\s*$|\s*[/^])")
_GROUP = r"((?:\{[^{}]*\}|[^{}])*)"
_FRAC_UNIT = re.compile(rf"\\frac\s*\{{{_GROUP}\}}\s*\{{{_GROUP}\}}")
_SCRIPT = re.compile(r"\^\s*(?:\{[^{}]*\}|[-−]?\d+)")


def _frac_units(s: str) -> str:
    """``\\frac{kg}{m^3}`` -> ``kg/m^3`` (a/b c reads a/(b c)): only a fraction of unit symbols (no digits but in
    exponents), so ``\\frac{1}{2}`` and ``\\frac{3}{x}`` stay."""
    if "\\frac" not in s:
        return s

    def repl(m: re.Match) -> str:
        both = _SCRIPT.sub("", m.group(1) + m.group(2))
        if re.search(r"\d", both) or not re.search(r"[A-Za-zΩμµ°]", both):
            return m.group(0)
        return f" {m.group(1).strip()}/{m.group(2).strip()}"

    return _FRAC_UNIT.sub(repl, s)


# --- reading a unit with pint ---------------------------------------------------------------------------

@lru_cache(maxsize=1)
def registry():
    """pint's registry, built once per process (about 0.3 s; the grading workers inherit it built)."""
    import pint

    ureg = pint.UnitRegistry(cache_folder=None)
    ureg.define("solar_mass = 1.98847e30 * kilogram = M_sun = Msun = M_odot")
    ureg.define("kiloton_of_TNT = 4.184e12 * joule = kilotons_of_TNT")
    return ureg


# Spellings pint does not know, or reads otherwise than physics texts mean them.
_ALIASES = {
    "AU": "au", "ly": "light_year", "lightyear": "light_year", "lightyears": "light_year", "yr": "year",
    "yrs": "year", "mole": "mol", "moles": "mol", "rads": "rad", "deg": "degree", "degrees": "degree", "sec": "s",
    "secs": "s", "hrs": "hour", "Nm": "newton*meter", "Tm": "tesla*meter", "Vs": "volt*second", "Ws": "watt*second",
    "As": "ampere*second", "Js": "joule*second", "kN": "kilonewton", "Pa": "pascal", "cc": "cubic_centimeter",
    "Cal": "kcal", "Torr": "torr", "percent": "percent", "%": "percent", "°": "degree", "°C": "degC",
    "°F": "degF", "°K": "kelvin", "ohms": "ohm", "Ω": "ohm", "Å": "angstrom", "ℓ": "liter", "l": "liter",
    "M_sun": "solar_mass", "Msun": "solar_mass", "amu": "dalton", "µ": "micro", "mins": "minute",
}
_LATEX_NAMES = ((r"\\Omega", " Ω "), (r"\\AA", " Å "), (r"(?<![A-Za-z])([mcdkµ])\s*\\ell", r"\1L"), (r"\\ell", "ℓ"),
                (r"M\s*_\s*\{?\s*\\odot\s*\}?", " M_sun "), (r"\\mu\s*", "µ"), (r"\\micro\s*", "µ"),
                (r"\\(?:cdot|times)", " * "), (r"\\,|\\;|\\!|~", " "))
_WORDS = ((r"\bper\b", "/"), (r"\b(?:square|sq\.?)\s+([A-Za-zµ]+)", r"\1^2"), (r"\bcubic\s+([A-Za-zµ]+)", r"\1^3"),
          (r"\bkilotons?\s+of\s+TNT\b", "kiloton_of_TNT"), (r"\blight[- ]years?\b", "light_year"))
_TOKEN = re.compile(r"\s*(?:(?P<open>[({])|(?P<close>[)}])|(?P<div>/)|(?P<mul>\*|·)|(?P<one>1)(?=\s*/)"
                    r"|(?P<name>[A-Za-zµΩÅℓ°%_]+)(?:\s*\^\s*(?:\{\s*(?P<e1>[-+]?\d+)\s*\}|(?P<e2>[-+]?\d+)))?)")
_ANGLE = {"radian", "degree", "arcminute", "arcsecond", "turn", "gradian", "steradian"}
_RATIO = {"percent", "permille", "ppm", "count"}
MAX_UNIT_EXPONENT = 12


@dataclass(frozen=True)
class Unit:
    """A unit read by pint: its size in SI base units, its dimensionality, and a kind ("angle", "ratio",
    "offset" for °C / °F, or "")."""

    text: str
    factor: float
    dims: str
    kind: str
    pint_unit: object  # the pint Unit, for offset conversions


def _to_pint_text(u: str) -> str:
    s = _DEGREE.sub("°", _frac_units(clean(u).replace("\\%", "%")))
    for pattern, repl in _LATEX_NAMES:
        s = re.sub(pattern, repl, s)
    for pattern, repl in _WORDS:
        s = re.sub(pattern, repl, s, flags=re.IGNORECASE)
    return re.sub(r"°\s*([CFK])\b", r"°\1", s).replace("²", "^2").replace("³", "^3").replace("−", "-")


_NOT_UNITS = {"unit", "units", "times", "x", "X"}


@lru_cache(maxsize=4096)
def _pint_names(name: str) -> tuple | None:
    """pint's units for one name (its prefix and plural included), via the alias table: one unit, or the units a
    concatenation such as "Nm" or "Vs" stands for (an exponent applies to the last: T m^2); None if unknown."""
    if name in _NOT_UNITS:
        return None
    ureg = registry()
    target = _ALIASES.get(name, name)
    try:
        if target != name:
            return tuple(ureg.Unit(t) for t in target.split("*"))
        if not re.fullmatch(r"[A-Za-zµΩ_]+", name) or not ureg.parse_unit_name(name):
            return None
        return (ureg.Unit(name),)
    except Exception:  # noqa: BLE001  (pint raises many types for names it cannot read; unknown is all that matters)
        return None


def _pint_name(name: str) -> bool:
    return _pint_names(name) is not None


def _tokens(text: str) -> list[tuple[str, object]] | None:
    out: list[tuple[str, object]] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() != pos:
            return None
        pos = m.end()
        kind = m.lastgroup if m.group("name") is None else "name"
        if kind == "name":
            out.append(("name", (m.group("name"), int(m.group("e1") or m.group("e2") or 1))))
        elif kind in ("open", "close", "div", "mul", "one"):
            out.append((kind, None))
    return out if pos == len(text.rstrip()) else None


def _product(tokens: list[tuple[str, object]], i: int, depth: int):
    """(pint unit of tokens[i:] up to the closing bracket of this group, next index); "a/b c" is a/(b c)."""
    result, sign = None, 1
    while i < len(tokens):
        kind, val = tokens[i]
        if kind == "close":
            return result, i
        i += 1
        if kind == "div":
            sign = -1
            continue
        if kind in ("mul", "one"):
            continue
        if kind == "open":
            if depth >= 3:
                return None, i
            sub, i = _product(tokens, i, depth + 1)
            if sub is None or i >= len(tokens):
                return None, i
            i += 1  # the closing bracket
            factor = sub ** sign
        else:
            name, exp = val
            units = _pint_names(name)
            if units is None or abs(exp) > MAX_UNIT_EXPONENT:
                return None, i
            factor = units[-1] ** (exp * sign)
            for unit in units[:-1]:
                factor = factor * unit ** sign
        result = factor if result is None else result * factor
    return result, i


@lru_cache(maxsize=4096)
def parse_unit(u: str) -> Unit | None:
    """The unit ``u`` names, or None if it is not a product of known units with small integer exponents."""
    text = _to_pint_text(u)
    if not text.strip() or len(text) > 80:
        return None
    tokens = _tokens(text)
    if not tokens:
        return None
    result, i = _product(tokens, 0, 0)
    if result is None or i != len(tokens):
        return None
    return _unit_record(u, result)


def _unit_record(u: str, unit) -> Unit | None:
    ureg = registry()
    names = {name for name in unit._units}
    try:
        if any(n in ("degree_Celsius", "degree_Fahrenheit") for n in names):
            if len(names) != 1 or next(iter(unit._units.values())) != 1:
                return None  # °C inside a compound is a temperature difference: read as such below
            base = ureg.Quantity(1, unit).to_base_units()
            return Unit(u, 1.0, str(base.dimensionality), "offset", unit)
        base = ureg.Quantity(1, unit).to_base_units()
    except Exception:  # noqa: BLE001  (pint's errors for a unit it cannot reduce: not a unit we can compare)
        return None
    factor = float(base.magnitude)
    if not math.isfinite(factor) or factor == 0:
        return None
    kind = "angle" if names & _ANGLE else "ratio" if names & _RATIO else ""
    return Unit(u, factor, str(base.dimensionality), kind, unit)


def compatible(a: Unit, b: Unit) -> bool:
    """Whether two units measure the same thing (°C and K do; an angle and a percentage do not)."""
    return a.dims == b.dims and (a.kind == b.kind or {a.kind, b.kind} == {"offset", ""})


def convert(value: float, src: Unit, dst: Unit) -> float | None:
    """``value`` in ``src`` expressed in ``dst`` (None if they measure different things)."""
    if not compatible(src, dst):
        return None
    if "offset" in (src.kind, dst.kind):
        try:
            q = registry().Quantity(value, src.pint_unit).to(dst.pint_unit)
            return float(q.magnitude)
        except Exception:  # noqa: BLE001  (pint's errors for a conversion it refuses: not comparable)
            return None
    return value * src.factor / dst.factor


# --- the string key of a unit (when pint cannot read it) --------------------------------------------

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
