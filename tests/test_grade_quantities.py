"""Numbers with their written precision, units through pint, closed forms, structured answers, equations, golds
written as code, and GradeConfig: the pieces the grader's equivalence is built from, and each miss class of
issue 17 end to end (as a class, with right and wrong answers and false-positive traps)."""

from __future__ import annotations

import dataclasses

import pytest

from virgo.grade import GradeConfig, get_profile, grade_text
from virgo.grade.closedform import closed_form, same
from virgo.grade.golds import code_to_latex, normalize_answer
from virgo.grade.numbers import NumericRules, numbers_match, parse_number
from virgo.grade.structure import assignments, equations_proportional, rhs, solves, strip_condition
from virgo.grade.units import convert, parse_unit, split_value_unit
from virgo.records import Problem


def _p(answer: str, **meta) -> Problem:
    return Problem(id="q", question="?", answer=answer, meta=meta)


# --- numbers --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "value", "sig", "approximate"), [
    ("3.3e12", 3.3e12, 2, True), ("3.3E+12", 3.3e12, 2, True), ("3.3 \\times 10^{12}", 3.3e12, 2, True),
    ("3.3 x 10^12", 3.3e12, 2, True), ("3.3·10^12", 3.3e12, 2, True), ("3.3 × 10^{12}", 3.3e12, 2, True),
    ("1.3\\cdot10^{-35}", 1.3e-35, 2, True), ("10^{6}", 1e6, 1, False), ("-10^{-3}", -1e-3, 1, False),
    ("1,234.5", 1234.5, 5, True), ("0.0320", 0.032, 3, True), ("4100", 4100.0, 2, False), ("902", 902.0, 3, False),
])
def test_numbers_in_every_written_form(text, value, sig, approximate):
    n = parse_number(text)
    assert n is not None and n.value == pytest.approx(value) and (n.sig, n.approximate) == (sig, approximate)


@pytest.mark.parametrize("text", ["2x10", "12,34", "1 2", "3.3e", "10^{10^{10}}", "e12", "1e999"])
def test_not_numbers(text):
    assert parse_number(text) is None


@pytest.mark.parametrize(("gold", "pred", "rules", "ok"), [
    ("0.24", "0.2381", NumericRules(), True),  # the gold's two decimals
    ("0.24", "0.2449", NumericRules(), True),
    ("0.24", "0.2451", NumericRules(), False),
    ("0.24", "0.2", NumericRules(), False),  # less precise than the gold: not by the gold's precision
    ("6.0 \\times 10^{23}", "6.02e23", NumericRules(), True),
    ("902", "901", NumericRules(), False),  # never a flat 1%
    ("902", "901", NumericRules(science=True), False),
    ("4100", "4102", NumericRules(), False),  # competition maths: 4100 is exact
    ("4100", "4102", NumericRules(science=True), True),  # a measured quantity: 41 hundreds
    ("100", "140", NumericRules(science=True), False),  # one significant figure is never enough
    ("10", "12", NumericRules(science=True), False),
    ("0.2381", "0.24", NumericRules(science=True), True),  # a rounded answer, where units are about
    ("0.2381", "0.24", NumericRules(), False),
    ("902", "9.0 \\times 10^2", NumericRules(science=True), True),
    ("2.47", "2.6", NumericRules(tolerance=0.1), False),  # the item's tolerance decides alone
    ("2.47", "2.5", NumericRules(tolerance=0.1), True),
    ("289.6", "295", NumericRules(rel_tol=0.05), True),
    ("289.6", "310", NumericRules(rel_tol=0.05), False),
    ("0.24", "0.2381", NumericRules(written_precision=False), False),
])
def test_number_rules(gold, pred, rules, ok):
    assert numbers_match(parse_number(gold), parse_number(pred), rules)[0] is ok


# --- units ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("a", "b", "factor"), [
    ("\\mathrm{~m} / \\mathrm{s}^{2}", "m s^-2", 1.0), ("\\frac{\\mathrm{kg}}{\\mathrm{m}^{3}}", "kg/m^3", 1.0),
    ("kcal m^-2 yr^-1", "kcal/(m^2 yr)", 1.0), ("\\mu \\mathrm{m}", "µm", 1.0), ("km/h", "kilometers per hour", 1.0),
    ("cm²", "square centimeters", 1.0), ("m·s⁻¹", "m/s", 1.0), ("\\Omega", "ohm", 1.0), ("\\AA", "nm", 0.1),
    ("J/(mol K)", "\\frac{\\mathrm{J}}{\\mathrm{mole} \\cdot \\mathrm{K}}", 1.0), ("GeV/c^2", "MeV/c^2", 1000.0),
    ("cm", "m", 0.01), ("hPa", "kPa", 0.1), ("\\mathrm{Tm}^{2} \\mathrm{~s}^{-1}", "T m^2/s", 1.0),
])
def test_units_read_by_pint(a, b, factor):
    ua, ub = parse_unit(a), parse_unit(b)
    assert ua is not None and ub is not None and ua.dims == ub.dims
    assert convert(1.0, ua, ub) == pytest.approx(factor)


@pytest.mark.parametrize(("a", "b"), [("m/s", "m/s^2"), ("J", "W"), ("Hz", "s"), ("%", "°"), ("N/m", "Pa")])
def test_units_of_different_things(a, b):
    assert convert(1.0, parse_unit(a), parse_unit(b)) is None


def test_temperatures_convert_with_their_offset():
    assert convert(25.0, parse_unit("^{\\circ}C"), parse_unit("K")) == pytest.approx(298.15)


@pytest.mark.parametrize(("text", "split"), [
    ("2191.7 metres", ("2191.7", "metres")), ("4.4 m", ("4.4", "m")), ("28.1 \\mu m", ("28.1", "µm")),
    ("9.8 \\frac{m}{s^2}", ("9.8", "m/s^2")), ("3.3 \\times 10^{12} \\mathrm{~m}", ("3.3 \\times 10^{12}", "m")),
    ("2.5 kcal/(m^2 yr)", ("2.5", "kcal/(m^2 yr)")),
    ("2n", None), ("2 m g", None), ("3 k", None), ("5 and", None), ("\\frac{3}{x}", None),
])
def test_where_a_unit_starts(text, split):
    assert split_value_unit(text) == split


# --- closed forms, structures, equations, code-like golds -------------------------------------------------------

def test_closed_forms_are_read_without_executing_anything():
    assert same(closed_form("\\frac{3t}{2}"), closed_form("\\frac{3}{2} t"))
    assert not same(closed_form("2 v_0 t"), closed_form("2 v_{0}"))
    assert same(closed_form("\\frac{1}{R+r}\\sqrt{\\frac{Gm}{R}}"), closed_form("\\sqrt{\\frac{Gm}{R(R+r)^2}}"))
    assert closed_form("-2 + 7i").values[0] == pytest.approx(complex(-2, 7))
    for refused in ("10^{10^{10}}", "2\\frac{1}{2}", "2 3", "x = 2", "\\infty", "__import__('os')", "1,2"):
        assert closed_form(refused) is None, refused


@pytest.mark.parametrize(("code", "latex"), [
    ("np.arcsin(10/13)", "\\arcsin(10/13)"), ("sqrt(3)/2", "\\sqrt{3}/2"), ("x**2+1", "x^2+1"),
    ("math.sqrt(2)*np.exp(-1)", "\\sqrt{2}*e^{-1}"), ("2*pi", "2*\\pi"), ("**42**", "**42**"),
    ("\\sqrt{2}", "\\sqrt{2}"),
])
def test_code_like_golds_are_rewritten_not_run(code, latex):
    assert code_to_latex(code) == latex


def test_a_hostile_code_gold_is_only_text(tmp_path):
    sentinel = tmp_path / "RAN"
    gold = f"__import__('os').system('touch {sentinel}')"
    assert grade_text(_p(gold), f"\\boxed{{{gold}}}").verdict == "correct"  # the same text, compared as text
    grade_text(_p("np.sqrt(2)"), f"\\boxed{{exec(\"open('{sentinel}', 'w')\")}}")
    assert not sentinel.exists()


def test_structures():
    assert assignments("x = 2, y = 3") == [("x", "2"), ("y", "3")]
    assert assignments("(2, 3)") == [(None, "2"), (None, "3")]
    assert assignments("x = 2 \\text{ or } x = 3") == [("x", "2"), ("x", "3")]
    assert strip_condition("x = 3 \\text{ for } x > 0") == "x = 3"
    assert strip_condition("\\frac{1}{x}, x \\neq 0") == "\\frac{1}{x}"
    assert rhs("V_{Be} = 2.01") == "2.01" and rhs("x \\in [-2, 7]") == "[-2, 7]"
    assert rhs("n_{1} \\sin i_{1}=n_{2} \\sin i_{2}") == "n_{1} \\sin i_{1}=n_{2} \\sin i_{2}"  # an equation, whole
    assert equations_proportional("y = 2x + 1", "4x - 2y + 2 = 0")
    assert not equations_proportional("x = 2", "x = 4")
    assert solves("\\omega^2 D^3 = G M", "\\omega = \\sqrt{\\frac{GM}{D^3}}")
    assert not solves("\\omega^2 D^3 = G M", "\\omega = \\sqrt{\\frac{GM}{D^2}}")
    assert normalize_answer("$=1.702 \\times 10^{26} $") == "1.702 \\times 10^{26}"


# --- each miss class of issue 17, end to end --------------------------------------------------------------------

ISSUE_CLASSES = [
    # precision
    (_p("0.24"), r"\boxed{0.2381}", "correct"), (_p("6.0 \\times 10^{23}"), r"\boxed{6.02 \times 10^{23}}", "correct"),
    (_p("4100", unit="J"), r"\boxed{4102}", "correct"), (_p("902"), r"\boxed{901}", "wrong"),
    (_p("902", unit="m"), r"\boxed{901 \text{ m}}", "wrong"),
    # scientific notation, units after
    (_p("3.3 \\times 10^{12}"), "The answer is 3.3e12 Hz.", "correct"),
    (_p("3.3 \\times 10^{12}"), r"\boxed{3.3 x 10^12}", "correct"),
    (_p("3.3 \\times 10^{12}"), r"\boxed{3.3·10^{12}}", "correct"),
    # units
    (_p("2.5 kcal m^-2 yr^-1"), r"\boxed{2.5 \text{ kcal m}^{-2}\text{ yr}^{-1}}", "correct"),
    (_p("0.5 m"), r"\boxed{50 \text{ cm}}", "correct"), (_p("0.5", unit="m"), r"\boxed{50 \text{ s}}", "wrong"),
    (_p("9.8", unit="m/s^2"), r"\boxed{9.8 \text{ m/s}}", "wrong"),
    # structures, inequalities, "or" lists, full-width punctuation, subscripts, code, approximations
    (_p("(2,3)"), r"\boxed{x = 2, y = 3}", "correct"), (_p("x=2, y=3"), r"\boxed{(3, 2)}", "wrong"),
    (_p("(-\\infty, 2]"), r"\boxed{x \le 2}", "correct"), (_p("(-\\infty, 2]"), r"\boxed{x < 2}", "wrong"),
    (_p("2, 3"), r"\boxed{x = 2 \text{ or } x = 3}", "correct"), (_p("2,3"), r"\boxed{2，3}", "correct"),
    (_p("B"), "The answer is （B）", "correct"), (_p("E_1"), r"\boxed{E₁}", "correct"),
    (_p("np.arcsin(10/13)"), r"\boxed{\arcsin\left(\frac{10}{13}\right)}", "correct"),
    (_p("np.arcsin(10/13)"), r"\boxed{\arccos(10/13)}", "wrong"), (_p("3.14"), r"\boxed{\approx 3.14}", "correct"),
    # equations
    (_p("y = 2x + 1"), r"\boxed{2x - y + 1 = 0}", "correct"), (_p("y = 2x + 1"), r"\boxed{4x - 2y = -2}", "correct"),
    (_p("y = 2x + 1"), r"\boxed{2x - y - 1 = 0}", "wrong"),
    # extraction
    (_p("42"), "**Final Answers**\n\n42", "correct"), (_p("3"), "**Final Answer**\n- $x = 3$", "correct"),
    (_p("17.5", unit="MeV"), "**Final Answer**\nThe energy released is:\n\\[ E = 17.5 \\text{ MeV} \\]", "correct"),
    (_p("(2,3)"), r"$x=\boxed{2}$, $y=\boxed{3}$", "correct"),
    # false positives that must never happen
    (_p("12"), r"The answer is \boxed{12", "truncated"), (_p("12"), "<think>so \\boxed{12}</think>", "no_answer"),
]


@pytest.mark.parametrize(("problem", "text", "verdict"), ISSUE_CLASSES)
def test_issue_classes(problem, text, verdict):
    g = grade_text(problem, text)
    assert g.verdict == verdict, g


# --- GradeConfig ----------------------------------------------------------------------------------------------

def test_grade_config_resolves_the_profile():
    fields = {f.name: f for f in dataclasses.fields(GradeConfig)}
    assert all(f.metadata.get("help") for f in fields.values())
    assert {"profile", "max_answer_chars", "unclosed_solution", "workers", "grade_timeout", "judge_url", "judge_model",
            "judge_cache", "thought_markers", "thought_answers", "rel_tol", "abs_tol", "written_precision",
            "unit_conversion"} <= set(fields)
    assert GradeConfig().profile_obj() == get_profile("default")
    prof = GradeConfig(profile="olympiadbench-physics", rel_tol=0.01, unit_conversion=False,
                       unclosed_solution="truncated", thought_markers=["<r>...</r>"],
                       max_answer_chars=100).profile_obj()
    assert (prof.name, prof.rel_tol, prof.unit_conversion, prof.unclosed_solution, prof.max_answer_chars) == \
        ("olympiadbench", 0.01, False, "truncated", 100)
    assert prof.thought_formats[-1].begin_thought == "<r>"
    assert GradeConfig().resolved_profile("mmmu").name == "mmmu"
    assert grade_text(_p("0.5 m"), r"\boxed{50 \text{ cm}}", profile=prof).verdict == "wrong"  # no conversions
    with pytest.raises(ValueError, match="rel_tol"):
        get_profile("default", rel_tol=-1.0)
