"""Difficulty bands (paper digest 1.5): medium 4-5 of 5, hard 2-3, unused 0-1, easy = base greedy solves it."""

from __future__ import annotations

import pytest

from virgo.distill.bands import BandSpec, ProblemTally, band_of, parse_selection, select_band, tally
from virgo.records import Grade


@pytest.mark.parametrize("n_correct, band", [(5, "medium"), (4, "medium"), (3, "hard"), (2, "hard"),
                                             (1, "unused"), (0, "unused")])
def test_paper_bands_out_of_five(n_correct, band):
    assert band_of(n_correct, 5) == band
    assert band_of(n_correct, 5, base_correct=False) == band


def test_base_greedy_solved_is_easy_whatever_the_rollouts():
    for k in range(6):
        assert band_of(k, 5, base_correct=True) == "easy"


def test_other_rollout_counts_keep_the_paper_shares():
    # 8/10 = 4/5 is medium; 7/10 is not; 4/10 = 2/5 is hard; 3/10 is unused.
    assert [band_of(k, 10) for k in (10, 8, 7, 4, 3, 0)] == ["medium", "medium", "hard", "hard", "unused", "unused"]
    # Custom thresholds: medium needs all 5.
    spec = BandSpec(medium_min=5, hard_min=3)
    assert [band_of(k, 5, spec=spec) for k in (5, 4, 3, 2)] == ["medium", "hard", "hard", "unused"]


def test_band_of_rejects_impossible_counts():
    with pytest.raises(ValueError):
        band_of(6, 5)
    with pytest.raises(ValueError):
        band_of(0, 0)
    with pytest.raises(ValueError):
        BandSpec(medium_min=2, hard_min=3)


def _grades(pid, verdicts):
    return [Grade(id=pid, sample=i, verdict=v, extracted=None, graded_by="test") for i, v in enumerate(verdicts)]


def test_tally_counts_correct_verdicts_only():
    t = tally("p", _grades("p", ["correct", "wrong", "truncated", "correct", "no_answer"]),
              Grade(id="p", sample=0, verdict="wrong", extracted="3", graded_by="test"))
    assert (t.n_rollouts, t.n_correct, t.base_correct, t.pass_rate) == (5, 2, False, 0.4)
    assert t.band() == "hard"
    with pytest.raises(ValueError, match="duplicate"):
        tally("p", _grades("p", ["correct"]) * 2)


def test_a_partly_rolled_out_problem_is_incomplete_not_banded():
    # One correct rollout graded of the 5 asked for: by count alone that is 1/1 = "medium".
    assert band_of(1, 1) == "medium"
    t = tally("p", _grades("p", ["correct"]), n=5)
    assert (t.n_rollouts, t.n_graded, t.complete, t.band()) == (5, 1, False, "incomplete")
    done = tally("p", _grades("p", ["correct", "wrong", "wrong", "wrong", "correct"]), n=5)
    assert done.complete and done.band() == "hard"
    with pytest.raises(ValueError, match="sample 5 but only n=5"):
        tally("p", _grades("p", ["correct"] * 6), n=5)


def test_incomplete_problems_are_in_no_selection():
    ts = [ProblemTally("full", 5, 5, False), ProblemTally("part", 5, 2, False, n_graded=2),
          ProblemTally("part_easy", 5, 1, True, n_graded=3)]
    picked = {sel: select_band(ts, sel) for sel in ("medium", "solved", "all", "easy", "hard")}
    assert picked == {"medium": ["full"], "solved": ["full"], "all": ["full"], "easy": [], "hard": []}
    assert select_band(ts, "random", random_size=3) == ["full"]


HAND_MADE = [  # (id, correct out of 5, base greedy correct)
    ("easy5", 5, True), ("easy1", 1, True), ("m5", 5, False), ("m4", 4, None), ("h3", 3, False),
    ("h2", 2, False), ("u1", 1, False), ("u0", 0, False),
]


def _tallies():
    return [ProblemTally(pid, 5, k, b) for pid, k, b in HAND_MADE]


def test_select_band_on_a_hand_made_set():
    ts = _tallies()
    assert select_band(ts, "medium") == ["m5", "m4"]
    assert select_band(ts, "hard") == ["h3", "h2"]
    assert select_band(ts, "medium,hard") == ["m5", "m4", "h3", "h2"]
    # "unused" with 0 correct has nothing to train on, so only u1 is selectable.
    assert select_band(ts, "unused") == ["u1"]
    assert select_band(ts, "easy") == ["easy5", "easy1"]
    # solved: at least one correct rollout, base-solved problems dropped.
    assert select_band(ts, "solved") == ["m5", "m4", "h3", "h2", "u1"]
    assert select_band(ts, "all") == ["easy5", "easy1", "m5", "m4", "h3", "h2", "u1"]
    # Only problems with a usable (format-passing correct) rollout are eligible.
    assert select_band(ts, "medium", usable={"m4", "h3"}) == ["m4"]


def test_random_band_ignores_base_filter_and_is_seeded():
    ts = _tallies()
    solved = {"easy5", "easy1", "m5", "m4", "h3", "h2", "u1"}
    a = select_band(ts, "random", random_size=4, seed=1)
    assert len(a) == 4 and set(a) <= solved
    assert a == select_band(ts, "random", random_size=4, seed=1)
    # Over seeds the base-solved problems do get drawn (the random split ignores the base filter).
    drawn = set().union(*(select_band(ts, "random", random_size=4, seed=s) for s in range(20)))
    assert {"easy5", "easy1"} <= drawn and "u0" not in drawn
    # Default size = the medium band's size; asking for more than exist gives all of them.
    assert len(select_band(ts, "random", seed=0)) == 2
    assert sorted(select_band(ts, "random", random_size=100)) == sorted(solved)


def test_parse_selection_errors_name_the_choices():
    assert parse_selection("medium, hard") == ("medium", "hard")
    with pytest.raises(ValueError, match="unknown band 'mediun'"):
        parse_selection("mediun")
    with pytest.raises(ValueError, match="cannot be combined"):
        parse_selection("random,medium")
