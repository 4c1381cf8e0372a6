"""The extraction rules as data: every rule's own case table, run through the whole extraction engine."""

from __future__ import annotations

import pytest

from virgo.grade import EXTRACTION_RULES, RULES, extract_answer
from virgo.grade.rules import STRONG_RULES, Case, Rule
from virgo.records import Problem


def _problem(case: Case) -> Problem:
    meta = {"is_multiple_answer": True} if case.multi else {}
    if case.choices:
        return Problem(id="c", question="Pick one.", answer=case.gold, choices=list(case.choices),
                       answer_type="multiple_choice", meta=meta)
    if len(case.gold) == 1 and case.gold.isupper():  # a letter gold without options: options drawn in the image
        return Problem(id="c", question="Pick one.", answer=case.gold, answer_type="multiple_choice", meta=meta)
    return Problem(id="c", question="?", answer=case.gold, meta=meta)


def _rows():
    for rule in EXTRACTION_RULES:
        for n, case in enumerate(rule.cases, 1):
            yield pytest.param(rule, case, id=f"{rule.name}:{n}")


def test_every_rule_is_data_with_its_own_rows():
    names = [r.name for r in EXTRACTION_RULES]
    assert len(set(names)) == len(names) and len({r.priority for r in EXTRACTION_RULES}) == len(names)
    assert set(RULES) == set(names) | {"none"}
    assert set(STRONG_RULES) == {"boxed", "answer_list", "answer_is"}
    for rule in EXTRACTION_RULES:
        assert rule.doc and rule.cases, rule.name
        assert any(c.answer is not None and (c.rule or rule.name) == rule.name for c in rule.cases), rule.name


@pytest.mark.parametrize(("rule", "case"), list(_rows()))
def test_rule_case(rule: Rule, case: Case):
    ex = extract_answer(case.text, _problem(case), case.profile)
    expected_rule = case.rule or rule.name
    assert (ex.answer, ex.rule) == (case.answer, expected_rule), ex
    if case.parts is not None:
        assert ex.answers == case.parts, ex


def test_option_mention_is_a_profile_switch():
    p = Problem(id="m", question="Which organ?", answer="B", choices=["rectum", "pancreas", "stomach"],
                answer_type="multiple_choice")
    text = "It must be the pancreas, which makes the juice."
    assert (extract_answer(text, p, "mmmu").answer, extract_answer(text, p, "mmmu").rule) == ("B", "option_mention")
    assert extract_answer(text, p, "default").rule == "none"
