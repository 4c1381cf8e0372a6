"""Building the long-thought dataset from hand-made graded rollouts: bands, selection policy, format, stats."""

from __future__ import annotations

import dataclasses

import pytest

from virgo.distill.dataset import build_dataset, choose
from virgo.distill.filters import FormatSpec
from virgo.records import Generation, Grade, LongThoughtExample, Problem, read_records, write_records
from virgo.thought import BEGIN_THOUGHT, render_response


def thought_of(words: int, tag: str) -> str:
    # Varied words so no repetition rule fires; length grows with `words`.
    return " ".join(f"{tag}{i}" for i in range(words))


def make_set(spec):
    """spec: {pid: (base_correct, [(verdict, words, complete), ...])} -> problems, rollouts, grades, base grades."""
    problems, rollouts, grades, base = [], [], [], []
    for pid, (base_ok, rolls) in spec.items():
        problems.append(Problem(id=pid, question=f"What is x in figure {pid}?", answer="5",
                                images=[f"/data/img/{pid}.png"], meta={"domain": "geometry"}))
        if base_ok is not None:
            base.append(Grade(id=pid, sample=0, verdict="correct" if base_ok else "wrong", extracted="5",
                              graded_by="hand"))
        for s, (verdict, words, complete) in enumerate(rolls):
            th = thought_of(words, f"{pid}s{s}w")
            text = render_response(th, r"\boxed{5}") if complete else f"{BEGIN_THOUGHT}\n\n{th}"
            rollouts.append(Generation(id=pid, sample=s, text=text, finish_reason="stop" if complete else "length",
                                       completion_tokens=words + 10, thought_tokens=words, model="teacher-x",
                                       settings={"temperature": 0.7}))
            grades.append(Grade(id=pid, sample=s, verdict=verdict, extracted="5", graded_by="hand"))
    return problems, rollouts, grades, base


C, W, T = "correct", "wrong", "truncated"
SET = {
    "easy": (True, [(C, 30, True)] * 5),
    "med5": (False, [(C, 50, True), (C, 20, True), (C, 40, True), (C, 20, True), (C, 60, True)]),
    "med4": (False, [(W, 10, True), (C, 80, True), (C, 30, True), (C, 70, True), (C, 90, True)]),
    "hard3": (False, [(C, 90, True), (W, 10, True), (C, 45, True), (W, 5, True), (C, 60, True)]),
    "hard2fmt": (False, [(C, 40, False), (W, 10, True), (C, 35, False), (T, 5, False), (W, 5, True)]),
    "unused1": (False, [(C, 40, True), (W, 10, True), (W, 35, True), (T, 5, False), (W, 5, True)]),
    "none": (False, [(W, 40, True)] * 5),
}


def test_medium_band_keeps_shortest_correct_rollout():
    problems, rollouts, grades, base = make_set(SET)
    ex, stats = build_dataset(problems, rollouts, grades, base, band="medium")
    assert [e.id for e in ex] == ["med5", "med4"]
    # med5: two correct of 20 words (samples 1 and 3): the tie goes to the lower sample.
    assert ex[0].extra["sample"] == 1 and ex[1].extra["sample"] == 2
    assert ex[0].thought == thought_of(20, "med5s1w")
    assert ex[0].images == ["/data/img/med5.png"] and ex[0].answer == "5" and ex[0].domain == "geometry"
    assert ex[0].source == "teacher-x" and "boxed{5}" in ex[0].solution
    want = {"band": "medium", "n_correct": 4, "n_rollouts": 5, "pass_rate": 0.8, "base_correct": False,
            "teacher_settings": {"temperature": 0.7}}
    assert {k: ex[1].extra[k] for k in want} == want
    assert stats["bands"] == {"easy": 1, "medium": 2, "hard": 2, "unused": 2}
    assert stats["selection"]["dropped"] == {"band_hard": 1, "format": 1, "band_easy": 1, "band_unused": 1,
                                             "no_correct_rollout": 1}


def test_hard_band_drops_problems_whose_correct_rollouts_fail_format():
    problems, rollouts, grades, base = make_set(SET)
    ex, stats = build_dataset(problems, rollouts, grades, base, band="hard")
    # hard2fmt has 2 correct rollouts but both truncated: nothing to train on.
    assert [e.id for e in ex] == ["hard3"] and ex[0].extra["sample"] == 2
    assert stats["format"]["correct_rejected"] == 2
    assert stats["format"]["rejects"] == {"status_truncated": 4}


def test_without_base_grades_nothing_is_easy():
    problems, rollouts, grades, _ = make_set(SET)
    ex, stats = build_dataset(problems, rollouts, grades, None, band="medium")
    assert [e.id for e in ex] == ["easy", "med5", "med4"]
    assert stats["base"] == {"given": False, "solved": 0, "missing": 0}


def test_solved_selection_and_all_policy():
    problems, rollouts, grades, base = make_set(SET)
    ex, stats = build_dataset(problems, rollouts, grades, base, band="solved", policy="all")
    ids = [e.id for e in ex]
    # Every correct, well-formed rollout of every non-easy solved problem, one example each.
    assert ids == ["med5#0", "med5#1", "med5#2", "med5#3", "med5#4", "med4#1", "med4#2", "med4#3", "med4#4",
                   "hard3#0", "hard3#2", "hard3#4", "unused1#0"]
    assert stats["selection"]["examples"] == 13 and stats["selection"]["problems"] == 4
    assert stats["pass_rate"]["correct_per_problem"] == {"0": 1, "1": 1, "2": 1, "3": 1, "4": 1, "5": 2}
    assert stats["pass_rate"]["rollouts"] == round(20 / 35, 4)


def test_random_band_and_random_policy_are_seeded():
    problems, rollouts, grades, base = make_set(SET)
    a, sa = build_dataset(problems, rollouts, grades, base, band="random", policy="random", seed=3, random_size=3)
    b, _ = build_dataset(problems, rollouts, grades, base, band="random", policy="random", seed=3, random_size=3)
    assert [(e.id, e.extra["sample"]) for e in a] == [(e.id, e.extra["sample"]) for e in b]
    assert len(a) == 3 and {e.id for e in a} <= {"easy", "med5", "med4", "hard3", "unused1"}
    assert sa["selection"]["dropped"]["random_not_drawn"] == 2
    picks = {build_dataset(problems, rollouts, grades, base, band="medium", policy="random", seed=s)[0][0]
             .extra["sample"] for s in range(30)}
    assert picks == {0, 1, 2, 3, 4}  # every correct rollout of med5 can be drawn


def test_length_bounds_and_stats():
    problems, rollouts, grades, base = make_set(SET)
    spec = FormatSpec(unit="tokens", min_thought=25, max_thought=85)
    ex, stats = build_dataset(problems, rollouts, grades, base, band="medium,hard", format_spec=spec)
    # med5's 20-word rollouts are too short now: its shortest usable is 40 words (sample 2).
    got = {e.id: e.extra["sample"] for e in ex}
    assert got == {"med5": 2, "med4": 2, "hard3": 2}
    assert stats["lengths"]["thought_tokens"] == {"n": 3, "min": 30, "mean": 38.3, "median": 40, "max": 45}
    assert stats["format"]["rejects"]["thought_too_short"] > 0 and stats["format"]["rejects"]["thought_too_long"] > 0


def test_written_dataset_reads_back_as_training_records(tmp_path):
    problems, rollouts, grades, base = make_set(SET)
    ex, _ = build_dataset(problems, rollouts, grades, base, band="medium")
    write_records(tmp_path / "d.jsonl", ex)
    back = read_records(tmp_path / "d.jsonl", LongThoughtExample, check_images=False)  # the images are made up
    assert [b.response for b in back] == [e.response for e in ex]
    assert back[0].extra["band"] == "medium"


def test_inconsistent_inputs_are_errors():
    problems, rollouts, grades, base = make_set(SET)
    with pytest.raises(ValueError, match="no grade"):
        build_dataset(problems, rollouts, grades[:-1], base)
    with pytest.raises(ValueError, match="duplicate rollout"):
        build_dataset(problems, rollouts + rollouts[:1], grades, base)
    with pytest.raises(ValueError, match="policy"):
        choose(rollouts[:2], "longest")


def test_rollouts_of_unknown_problems_are_counted_not_used():
    problems, rollouts, grades, base = make_set(SET)
    ex, stats = build_dataset(problems[1:], rollouts, grades, base, band="solved")
    assert "easy" not in {e.id for e in ex} and stats["rollouts_without_problem"] == 5


def test_problems_missing_rollouts_are_incomplete_and_reported():
    # A run asked for n=5, was interrupted: "one" has 1 rollout (correct), "two" has 2 (both correct), "zero"
    # none yet. Counting only what exists would call "one" and "two" medium (1/1, 2/2).
    problems, rollouts, grades, base = make_set({
        "full": (False, [(C, 30, True), (C, 20, True), (C, 25, True), (C, 40, True), (W, 10, True)]),
        "one": (False, [(C, 30, True)]),
        "two": (False, [(C, 30, True), (C, 20, True)]),
        "zero": (False, []),
    })
    for n in (5, None):  # None: n is the highest sample index seen + 1 ("full" has 5)
        ex, stats = build_dataset(problems, rollouts, grades, base, band="medium", n=n)
        assert [e.id for e in ex] == ["full"] and ex[0].extra["n_rollouts"] == 5
        assert stats["n"] == 5
        assert stats["incomplete"] == {"problems": 3, "rollouts_missing": 4 + 3 + 5, "ids": ["one", "two", "zero"]}
        assert stats["bands"] == {"easy": 0, "medium": 1, "hard": 0, "unused": 0}
        assert stats["selection"]["dropped"] == {"incomplete": 2}
        assert stats["pass_rate"]["correct_per_problem"] == {"4": 1}  # complete problems only
    ex, _ = build_dataset(problems, rollouts, grades, base, band="solved", n=5)
    assert [e.id for e in ex] == ["full"]  # "solved" waits for the full set too


def test_rollouts_beyond_n_are_ignored_and_counted():
    problems, rollouts, grades, base = make_set({"p": (False, [(C, 30, True), (W, 20, True), (C, 25, True)])})
    # Left in the file by an earlier run with --n 5; they have no grades and must not count.
    extra = [dataclasses.replace(rollouts[0], sample=s) for s in (3, 4)]
    ex, stats = build_dataset(problems, rollouts + extra, grades, base, band="all", n=3)
    assert stats["rollouts_beyond_n"] == 2 and stats["rollouts"] == 3
    assert stats["incomplete"]["problems"] == 0 and stats["bands"]["hard"] == 1
    assert ex[0].extra["n_rollouts"] == 3 and ex[0].extra["n_correct"] == 2
