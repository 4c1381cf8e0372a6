"""Quantities: a value, possibly with a unit, against the gold one.

``compare_quantity`` splits a unit off each side (``virgo.grade.units``), checks the units measure the same thing
(pint's dimensionality; angles and ratios kept apart), converts the prediction into the gold's unit when they differ
and the profile lets a conversion count, then compares the values: plain numbers with their written precision
(``virgo.grade.numbers``), closed forms on the fast reader (``virgo.grade.closedform``), and a decimal prediction
against an exact closed form (``\\frac{\\sqrt2}{2}`` and 0.707). It returns None when it cannot decide, and the
caller goes on (structures, Math-Verify).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from virgo.grade.closedform import closed_form, same
from virgo.grade.match import Match
from virgo.grade.norm import key
from virgo.grade.numbers import Number, NumericRules, numbers_match, parse_number, same_value
from virgo.grade.profiles import Profile
from virgo.grade.units import Unit, compatible, convert, parse_unit, split_value_unit, unit_key

MV_ROUNDING = 6  # Math-Verify's float_rounding: a decimal answer equals an exact gold to 6 decimals


@dataclass(frozen=True)
class ItemRules:
    """What the item says about one gold answer: its absolute tolerance, unit and (MathVista) precision."""

    tolerance: float | None = None
    unit: str | None = None
    precision: int | None = None


def _physical(u: Unit | None) -> bool:
    return u is not None and u.kind not in ("ratio", "angle") and u.dims != "dimensionless"


def compare_quantity(gold: str, pred: str, profile: Profile, item: ItemRules) -> Match | None:
    """``gold`` and ``pred`` (cleaned, left-hand sides and the item's unit already dropped) as quantities."""
    gs, ps = split_value_unit(gold), split_value_unit(pred)
    gold_unit_text = gs[1] if gs else item.unit
    pred_unit_text = ps[1] if ps else None
    g_text, p_text = (gs[0] if gs else gold), (ps[0] if ps else pred)
    gu = parse_unit(gold_unit_text) if gold_unit_text else None
    pu = parse_unit(pred_unit_text) if pred_unit_text else None
    science = profile.science or item.tolerance is not None or item.unit is not None or _physical(gu) or \
        _physical(pu)
    tolerance = item.tolerance if item.tolerance is not None else profile.abs_tol
    rules = NumericRules(tolerance=tolerance, rel_tol=profile.rel_tol, written_precision=profile.written_precision,
                         science=science, round_digits=profile.round_digits, precision=item.precision)
    conversion = None
    if gold_unit_text and pred_unit_text:
        if gu is not None and pu is not None:
            if not compatible(gu, pu):
                return Match(False, "unit", detail=f"units measure different things: {pred_unit_text!r} for "
                                                   f"{gold_unit_text!r}")
            offset = "offset" in (gu.kind, pu.kind)
            if not (not offset and same_value(gu.factor, pu.factor)) and gu.pint_unit != pu.pint_unit:
                if not profile.unit_conversion:
                    return Match(False, "unit", detail=f"{pred_unit_text!r} for {gold_unit_text!r}: the profile "
                                                       f"does not count unit conversions")
                conversion = (pu, gu)
        elif unit_key(gold_unit_text) != unit_key(pred_unit_text) and "%" not in (gold_unit_text, pred_unit_text):
            return Match(False, "unit", decided=False,
                         detail=f"units differ: {gold_unit_text!r} vs {pred_unit_text!r}")
    percent = [u for u in (gu, pu) if u is not None and u.kind == "ratio"]
    m = compare_values(g_text, p_text, rules, conversion)
    if m is not None and not m.correct and percent and conversion is None:
        # "10%" for 0.1 (or 10): a percentage is compared as written and as a fraction.
        scale = 0.01 if pu is not None and pu.kind == "ratio" else 100.0
        alt = compare_values(g_text, p_text, rules, None, scale=scale)
        m = alt if alt is not None and alt.correct else m
    if m is not None:
        if conversion is not None:
            if m.correct:
                return replace(m, by="unit_conversion", detail=f"{pred_unit_text} -> {gold_unit_text}")
            return replace(m, by="unit", detail=f"converted from {pred_unit_text} to {gold_unit_text}: {m.detail}")
        if m.correct and (gs or ps) and m.by in ("numeric", "closed_form"):
            return replace(m, by="unit")
        return m
    if (gs or ps) and key(g_text) == key(p_text) and conversion is None:
        return Match(True, "unit")
    return None


def _scaled(n: Number, factor: float) -> Number:
    return replace(n, value=n.value * factor, quantum=abs(n.quantum * factor))


def compare_values(gold: str, pred: str, rules: NumericRules, conversion: tuple[Unit, Unit] | None,
                   scale: float = 1.0) -> Match | None:
    """Two values (no units): numbers by ``numbers_match``, closed forms by value; None when neither reads them."""
    gn, pn = parse_number(gold), parse_number(pred)
    gc = None if gn is not None else closed_form(gold)
    pc = None if pn is not None else closed_form(pred)
    pval = pn.value if pn is not None else (pc.real if pc is not None else None)
    if pval is not None and (conversion is not None or scale != 1.0):
        converted = convert(pval, *conversion) if conversion is not None else pval * scale
        if converted is None:
            return None
        factor = converted / pval if pval else 1.0
        if pn is not None:  # an offset conversion (°C to K) keeps the written precision as it was
            offset = conversion is not None and "offset" in (conversion[0].kind, conversion[1].kind)
            pn = replace(pn, value=converted) if offset else _scaled(pn, factor)
        pval = converted
    if gn is not None and pn is not None:
        ok, by, detail = numbers_match(gn, pn, rules)
        return Match(ok, by, detail=detail or None)
    gval = gn.value if gn is not None else (gc.real if gc is not None else None)
    if gval is not None and pval is not None:
        if gn is not None:  # a decimal gold and an exact prediction (5/21 for 0.24)
            ok, by, detail = numbers_match(gn, pval, rules)
            return Match(ok, by, detail=detail or None)
        if pn is not None:  # an exact gold and a decimal prediction (0.707 for √2/2)
            return _exact_gold_decimal_pred(gval, pn, rules)
        if rules.tolerance is not None:
            ok = abs(gval - pval) <= rules.tolerance * 1.01 or same_value(gval, pval)
            return Match(ok, "numeric_tol", detail=f"|{gval:g} - {pval:g}| vs {rules.tolerance:g}")
        if same_value(gval, pval) or math.isclose(gval, pval, rel_tol=1e-9, abs_tol=1e-12):
            return Match(True, "closed_form")
        ok, by, detail = numbers_match(Number(gval, False, 0, 1.0), pval, replace(rules, written_precision=False))
        return Match(ok, "closed_form" if by == "numeric" else by, detail=detail or None)
    if gc is not None and pc is not None and conversion is None and scale == 1.0:
        verdict = same(gc, pc)
        if verdict:
            return Match(True, "closed_form")
        if verdict is False and (gc.is_number or pc.is_number):  # two expressions in variables: Math-Verify decides
            return Match(False, "closed_form", detail="different values")
    return None


def _exact_gold_decimal_pred(gval: float, pn: Number, rules: NumericRules) -> Match:
    exact = Number(gval, False, 0, 1.0)
    ok, by, detail = numbers_match(exact, pn, replace(rules, written_precision=False))
    if ok or rules.tolerance is not None:  # the item's tolerance decides alone
        return Match(ok, by, detail=detail or None)
    if round(gval, MV_ROUNDING) == round(pn.value, MV_ROUNDING):
        return Match(True, "numeric", detail=f"equal to {MV_ROUNDING} decimals")
    if rules.science and rules.written_precision and pn.approximate and pn.sig >= 2 and \
            abs(gval - pn.value) <= pn.quantum / 2 * (1 + 1e-9):
        return Match(True, "precision", detail=f"the exact value rounds to the answer's {pn.sig} figures")
    return Match(False, "numeric", detail=f"{gval:g} != {pn.value:g}")
