"""pass@k, maj@k and mean@k against numbers worked out by hand; maj@k's vote uses the grader's equivalence."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from virgo.eval.sampling import (
    across_seeds,
    clusters,
    default_ks,
    grader_equivalence,
    majority,
    pass_at_k,
    sampling_metrics,
)
from virgo.records import Grade, Problem


def _grade(pid: str, sample: int, verdict: str, extracted: str | None) -> Grade:
    return Grade(id=pid, sample=sample, verdict=verdict, extracted=extracted, graded_by="test")


@pytest.mark.parametrize("n,c,k,expected", [
    (5, 2, 1, 0.4),                 # c / n
    (5, 2, 2, 0.7),                 # 1 - C(3,2)/C(5,2) = 1 - 3/10
    (5, 2, 3, 0.9),                 # 1 - C(3,3)/C(5,3) = 1 - 1/10
    (5, 2, 4, 1.0),                 # n - c < k: every draw of 4 holds a correct one
    (10, 0, 5, 0.0),
    (4, 4, 1, 1.0),
    (16, 3, 8, 0.9),                # 1 - C(13,8)/C(16,8) = 1 - 1287/12870
])
def test_pass_at_k_by_hand(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_is_stable_where_factorials_overflow_floats():
    n, c, k = 2000, 7, 1000
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-12)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_ties_go_to_the_answer_given_first():
    # Cluster ids are numbered in order of first appearance, so the lowest id among the tied is the earliest answer.
    assert majority([0, 1, 1, 0], 4) == 0  # 2 votes each
    assert majority([0, 1, 2, 1, 2], 5) == 1  # 1 and 2 tie with 2 votes; 1 came first
    assert majority([0, 1, 1], 2) == 0  # only the first k samples vote
    assert majority([None, None], 2) is None  # nobody voted


def test_clusters_follow_the_first_answer_of_each_cluster():
    same = {frozenset(("a", "a'")), frozenset(("a", "a''"))}
    out = clusters(["a'", "b", None, "a", "a''"], lambda x, y: frozenset((x, y)) in same)
    # "a'" starts cluster 0; "a" joins it (a' ~ a); "a''" is compared with the representative "a'" only: not the
    # same, so it starts cluster 2 although it matches "a" (greedy, representative-based, order-independent prefix).
    assert out == [0, 1, None, 0, 2]


def test_maj_at_k_uses_the_graders_equivalence():
    """Gold 0.5. Samples: 0.25 (wrong), 1/2, 0.5, \\frac{1}{2} (all right), 0.25 (wrong).

    By string equality the vote at k=4 is 0.25 (2 votes) against three singletons: wrong. The grader knows 1/2, 0.5
    and \\frac{1}{2} are one answer: 3 votes, right.
    """
    p = Problem(id="q", question="What is one half?", answer="0.5")
    answers = [("wrong", "0.25"), ("correct", "1/2"), ("correct", "0.5"), ("wrong", "0.25"),
               ("correct", "\\frac{1}{2}")]
    grades = [_grade("q", i, v, a) for i, (v, a) in enumerate(answers)]
    same = grader_equivalence([p], grades, workers=0)
    assert same(p, "1/2", "0.5") and same(p, "0.5", "\\frac{1}{2}") and not same(p, "0.25", "0.5")
    m = sampling_metrics([p], grades, same)
    maj = {k: v["value"] for k, v in m["maj@k"].items()}
    # k=1: 0.25 -> 0. k=2: 0.25 vs {1/2} tie -> 0.25 first -> 0. k=3: {1/2, 0.5} 2 votes -> 1.
    # k=4: 2 against 2 -> 0.25 first -> 0. k=5: 3 against 2 -> 1.
    assert maj == {"1": 0.0, "2": 0.0, "3": 1.0, "4": 0.0, "5": 1.0}
    string_equality = sampling_metrics([p], grades, lambda prob, a, b: a == b)
    assert string_equality["maj@k"]["4"]["value"] == 0.0 and string_equality["maj@k"]["5"]["value"] == 0.0
    # pass@k from all n = 5 samples with c = 3 right: pass@2 = 1 - C(2,2)/C(5,2) = 0.9
    assert m["pass@k"]["2"]["value"] == pytest.approx(0.9)
    assert m["pass@k"]["1"]["value"] == pytest.approx(0.6)


def test_option_letter_and_option_text_are_one_vote():
    p = Problem(id="mc", question="Pick one", answer="B", choices=["red", "blue", "green"],
                answer_type="multiple_choice")
    grades = [_grade("mc", 0, "wrong", "A"), _grade("mc", 1, "correct", "blue"), _grade("mc", 2, "correct", "B")]
    m = sampling_metrics([p], grades, grader_equivalence([p], grades, workers=0))
    assert m["maj@k"]["3"]["value"] == 1.0  # "blue" and "B" are one answer: 2 votes against 1
    assert m["maj@k"]["2"]["value"] == 0.0  # "A" vs "blue": a tie, "A" came first


def test_samples_without_an_answer_do_not_vote():
    p = Problem(id="q", question="?", answer="7")
    grades = [_grade("q", 0, "no_answer", None), _grade("q", 1, "truncated", "3"), _grade("q", 2, "correct", "7")]
    m = sampling_metrics([p], grades, lambda prob, a, b: a == b)
    assert [m["maj@k"][k]["value"] for k in ("1", "2", "3")] == [0.0, 0.0, 1.0]


def test_mean_at_k_and_its_standard_error_by_hand():
    """Three problems, 4 samples each. Sample passes: pass 0 gets 3/3, pass 1 1/3, pass 2 2/3, pass 3 0/3."""
    rows = {"a": "CCCW", "b": "CWCW", "c": "CWWW"}
    problems = [Problem(id=pid, question="?", answer="1") for pid in rows]
    grades = [_grade(pid, i, "correct" if v == "C" else "wrong", "1" if v == "C" else "2")
              for pid, vs in rows.items() for i, v in enumerate(vs)]
    m = sampling_metrics(problems, grades, lambda prob, a, b: a == b)
    passes = [1, 1 / 3, 2 / 3, 0]
    assert m["mean@k"]["1"] == {"value": 1.0, "n_problems": 3, "stderr": None}
    assert m["mean@k"]["4"]["value"] == pytest.approx(0.5)  # 6 of 12
    se4 = math.sqrt(sum((x - 0.5) ** 2 for x in passes) / 3) / 2  # stdev (n-1) / sqrt(4)
    assert m["mean@k"]["4"]["stderr"] == pytest.approx(se4)
    assert m["mean@k"]["2"]["value"] == pytest.approx(2 / 3)
    # pass@2 per problem: a (c=3): 1 - C(1,2)/C(4,2) = 1; b (c=2): 1 - 1/6; c (c=1): 1 - 3/6
    assert m["pass@k"]["2"]["value"] == pytest.approx((1 + 5 / 6 + 0.5) / 3)
    # maj@4: a -> "1" (3 votes) right; b -> 2-2 tie, "1" first: right; c -> "2" (3 votes) wrong
    assert m["maj@k"]["4"]["value"] == pytest.approx(2 / 3)


def test_problems_with_fewer_samples_leave_the_larger_k():
    problems = [Problem(id="a", question="?", answer="1"), Problem(id="b", question="?", answer="1")]
    grades = [_grade("a", 0, "correct", "1"), _grade("a", 1, "wrong", "2"), _grade("b", 0, "wrong", "2")]
    m = sampling_metrics(problems, grades, lambda prob, a, b: a == b)
    assert m["n"] == 2 and m["pass@k"]["1"]["n_problems"] == 2 and m["pass@k"]["2"]["n_problems"] == 1


def test_across_seeds_and_default_ks():
    s = across_seeds([0.5, 0.6, 0.7])
    assert s["mean"] == pytest.approx(0.6) and s["stderr"] == pytest.approx(0.1 / math.sqrt(3))
    assert across_seeds([0.4])["stderr"] is None
    assert default_ks(1) == [1] and default_ks(6) == [1, 2, 4, 6] and default_ks(8) == [1, 2, 4, 8]
