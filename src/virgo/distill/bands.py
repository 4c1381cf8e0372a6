"""Difficulty bands for distilled problems (paper section 3.3; digest section 1.5).

The paper's difficulty-controlled self-distillation:

1. drop the questions the *base* model already answers right with greedy decoding ("relatively easy");
2. roll the teacher out 5 times on the rest and count the correct trajectories:
   **medium** = 4 or 5 correct, **hard** = 2 or 3 correct, 0 or 1 correct = not used;
3. the **random** split samples questions regardless of whether the base model solves them.

The counts are defined for 5 rollouts. For another ``n`` the same *shares* are used (medium: at least 4/5 of the
rollouts correct, hard: at least 2/5), compared exactly in integers, so n = 5 gives the paper's bands and n = 10
gives medium 8-10, hard 4-7.

A problem is banded only once all ``n`` of its rollouts are graded: with 1 of 5 graded, "1 correct" could end
up anywhere from 1/5 (unused) to 5/5 (medium), so such a problem is **incomplete** and left out of every
selection until the run is resumed.

These are pure functions on counts; `virgo.distill.dataset` applies them to graded rollouts.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from virgo.records import Grade

EASY = "easy"  # the base model already solves it with greedy decoding: dropped by the difficulty filter
MEDIUM = "medium"
HARD = "hard"
UNUSED = "unused"  # too few correct rollouts to be trusted (0-1 of 5)
BANDS = (EASY, MEDIUM, HARD, UNUSED)
INCOMPLETE = "incomplete"  # fewer than n rollouts graded: no band yet (not selectable)

# Selections (what `--band` accepts) besides the bands themselves.
SOLVED = "solved"  # every problem solved by at least one rollout (the paper's D_QVQ rule); base filter if given
RANDOM = "random"  # the paper's random split: ignores the base filter, sampled at random among solved problems
ALL = "all"  # every band (diagnostics; easy and unused included)
SELECTIONS = (*BANDS, SOLVED, RANDOM, ALL)


@dataclass(frozen=True)
class BandSpec:
    """Thresholds as correct rollouts out of ``per``: medium >= medium_min/per, hard >= hard_min/per."""

    medium_min: int = 4
    hard_min: int = 2
    per: int = 5

    def __post_init__(self) -> None:
        if not 0 < self.hard_min <= self.medium_min <= self.per:
            raise ValueError(f"need 0 < hard_min <= medium_min <= per, got {self}")


PAPER = BandSpec()


def band_of(n_correct: int, n_rollouts: int, base_correct: bool | None = None, spec: BandSpec = PAPER) -> str:
    """The difficulty band of one problem from its correct-rollout count and the base model's greedy verdict.

    ``base_correct`` None means no base-model answer is known: no problem is called easy then.
    """
    if n_rollouts <= 0:
        raise ValueError("a band needs at least one rollout")
    if not 0 <= n_correct <= n_rollouts:
        raise ValueError(f"n_correct={n_correct} out of range for {n_rollouts} rollouts")
    if base_correct:
        return EASY
    # n_correct / n_rollouts >= k / per, compared in integers (no float rounding at the band edges).
    if n_correct * spec.per >= spec.medium_min * n_rollouts:
        return MEDIUM
    if n_correct * spec.per >= spec.hard_min * n_rollouts:
        return HARD
    return UNUSED


@dataclass(frozen=True)
class ProblemTally:
    """What the band decision needs for one problem."""

    id: str
    n_rollouts: int  # rollouts the problem should have (the run's n)
    n_correct: int
    base_correct: bool | None  # None: no base-model greedy answer for this problem
    n_graded: int | None = None  # rollouts graded so far; None: all n_rollouts

    @property
    def graded(self) -> int:
        return self.n_rollouts if self.n_graded is None else self.n_graded

    @property
    def complete(self) -> bool:
        return self.graded >= self.n_rollouts

    @property
    def pass_rate(self) -> float:
        return self.n_correct / self.graded if self.graded else 0.0

    def band(self, spec: BandSpec = PAPER) -> str:
        if not self.complete:
            return INCOMPLETE
        return band_of(self.n_correct, self.n_rollouts, self.base_correct, spec)


def tally(problem_id: str, grades: Sequence[Grade], base_grade: Grade | None = None, *,
          n: int | None = None) -> ProblemTally:
    """Count the correct rollouts of one problem out of ``n`` expected; the base verdict is its greedy grade.

    ``n`` None takes the grades given as all there are (only right when the caller knows the set is complete).
    """
    samples = {g.sample for g in grades}
    if len(samples) != len(grades):
        raise ValueError(f"problem {problem_id!r}: duplicate grades for one sample")
    if n is not None and any(s >= n for s in samples):
        raise ValueError(f"problem {problem_id!r}: a grade for sample {max(samples)} but only n={n} rollouts")
    return ProblemTally(
        id=problem_id,
        n_rollouts=len(grades) if n is None else n,
        n_correct=sum(g.correct for g in grades),
        base_correct=None if base_grade is None else base_grade.correct,
        n_graded=len(grades),
    )


def parse_selection(text: str) -> tuple[str, ...]:
    """``--band`` text to a tuple of selection names: "medium", "medium,hard", "random", "solved", "all"."""
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    if not names:
        raise ValueError("empty band selection")
    for s in names:
        if s not in SELECTIONS:
            raise ValueError(f"unknown band {s!r}; choose from {', '.join(SELECTIONS)} "
                             "(comma-separated bands allowed)")
    if (RANDOM in names or SOLVED in names or ALL in names) and len(names) > 1:
        raise ValueError("'random', 'solved' and 'all' cannot be combined with other bands")
    return names


def select_band(tallies: Iterable[ProblemTally], selection: str | Sequence[str], *, spec: BandSpec = PAPER,
                usable: set[str] | None = None, random_size: int | None = None, seed: int = 0) -> list[str]:
    """Ids of the problems a selection keeps, in input order (random: in sampled order).

    ``usable`` (optional) is the set of problem ids that still have a correct rollout passing the format checks;
    only those can give a training example, so only they are eligible; incomplete problems never are. ``random``
    draws ``random_size`` of the usable solved problems regardless of the base model (default size: as many as
    the medium band has, so the random split is comparable with the medium split as in the paper's Table 6).
    """
    names = parse_selection(selection) if isinstance(selection, str) else tuple(selection)
    tallies = list(tallies)

    def ok(t: ProblemTally) -> bool:
        return t.n_correct > 0 and t.complete and (usable is None or t.id in usable)

    if names == (RANDOM,):
        pool = [t.id for t in tallies if ok(t)]
        if random_size is None:
            random_size = sum(1 for t in tallies if ok(t) and t.band(spec) == MEDIUM)
        rng = random.Random(seed)
        return rng.sample(pool, min(random_size, len(pool)))
    if names == (ALL,):
        return [t.id for t in tallies if ok(t)]
    if names == (SOLVED,):
        return [t.id for t in tallies if ok(t) and t.band(spec) != EASY]
    wanted = set(names)
    return [t.id for t in tallies if ok(t) and t.band(spec) in wanted]
