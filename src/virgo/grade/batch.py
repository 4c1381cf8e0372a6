"""``grade_many``: what every stage calls to grade model output (pool + optional judge + progress)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from virgo.grade.core import Job, grade_job
from virgo.grade.pool import GradingPool, default_workers
from virgo.grade.profiles import Profile, excluded_reason, get_profile
from virgo.records import Generation, Grade, Problem

if TYPE_CHECKING:
    from virgo.grade.judge import Judge


def make_jobs(items: Iterable[tuple[Problem, Generation]], profile: Profile) -> Iterator[Job]:
    for problem, gen in items:
        if gen.id != problem.id:
            raise ValueError(f"generation {gen.id!r}/{gen.sample} paired with problem {problem.id!r}")
        yield Job(problem, gen.text, gen.finish_reason, profile, gen.sample)


def check_gradable(items: list[tuple[Problem, Generation]], profile: Profile) -> None:
    bad = sorted({p.id for p, _ in items if excluded_reason(p, profile)})
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise ValueError(f"{len(bad)} problems cannot be graded under profile {profile.name!r} "
                         f"({excluded_reason(next(p for p, _ in items if p.id == bad[0]), profile)}): {shown}. "
                         "Filter them out first with virgo.grade.gradable(problem, profile).")


def iter_grades(items: list[tuple[Problem, Generation]], *, profile: str | Profile = "default",
                workers: int | None = None, timeout: float = 2.0, judge: Judge | None = None,
                chunk: int = 256, progress: bool = False) -> Iterator[Grade]:
    """Grades of ``items`` in order, chunk by chunk (the judge reviews each chunk), from one worker pool.

    For long jobs that write each grade as it comes (``virgo grade``); ``grade_many`` collects them.
    """
    prof = get_profile(profile)
    check_gradable(items, prof)
    if not items:
        return
    from tqdm import tqdm

    with tqdm(total=len(items), desc="grading", unit="resp", disable=not progress) as bar:
        if workers == 0:
            for start in range(0, len(items), chunk):
                part = items[start:start + chunk]
                grades = []
                for job in make_jobs(part, prof):
                    grades.append(grade_job(job))
                    bar.update(1)
                yield from judge.review(part, grades) if judge is not None else grades
            return
        with GradingPool(min(workers or default_workers(), len(items)), timeout=timeout) as pool:
            for start in range(0, len(items), chunk):
                part = items[start:start + chunk]
                grades = list(pool.imap(make_jobs(part, prof), on_done=lambda _: bar.update(1)))
                yield from judge.review(part, grades) if judge is not None else grades


def grade_many(items: Iterable[tuple[Problem, Generation]], *, profile: str | Profile = "default",
               workers: int | None = None, timeout: float = 2.0, judge: Judge | None = None,
               progress: bool = False) -> list[Grade]:
    """Grade (problem, generation) pairs in a process pool; one Grade per pair, in order.

    ``workers``: processes (default: all cores; 0 grades in this process, without a time limit, for
    debugging). ``timeout``: seconds per item (CPU time, or wall time its worker runs or blocks; see
    ``virgo.grade.pool``); an item over it is graded ``wrong`` by ``timeout`` and its worker replaced.
    ``judge``: an optional ``virgo.grade.Judge`` for what the rules leave undecided.
    Raises ValueError (before grading anything) if a problem is excluded by the profile.
    """
    items = list(items)
    return list(iter_grades(items, profile=profile, workers=workers, timeout=timeout, judge=judge,
                            chunk=max(1, len(items)), progress=progress))
