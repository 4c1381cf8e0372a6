"""Graded rollouts to a long-thought training dataset, with stats.

Per problem: count the correct rollouts (`bands`), check every rollout's format (`filters`), keep the
problems the band selection asks for, and per kept problem take the shortest correct usable rollout (the
released Virgo data's rule), a seeded random one, or all of them. The result is `LongThoughtExample`
records (images kept, ``source`` = the teacher) that `virgo train` reads as they are.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from virgo.distill.bands import BANDS, PAPER, BandSpec, ProblemTally, parse_selection, select_band, tally
from virgo.distill.filters import FormatSpec, format_reasons
from virgo.records import Generation, Grade, LongThoughtExample, Problem
from virgo.thought import parse_response

POLICIES = ("shortest", "random", "all")


def response_length(gens: Sequence[Generation]) -> Callable[[Generation], int]:
    """A length key shared by a group: completion tokens when every rollout has them, else characters."""
    if all(g.completion_tokens is not None for g in gens):
        return lambda g: g.completion_tokens  # type: ignore[return-value]
    return lambda g: len(g.text)


def choose(candidates: Sequence[Generation], policy: str, *, seed: int = 0, key: str = "") -> list[Generation]:
    """The rollouts of one problem to keep: ``shortest`` (ties: lowest sample), ``random`` (seeded per problem), ``all``."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    cands = sorted(candidates, key=lambda g: g.sample)
    if not cands:
        return []
    if policy == "all":
        return cands
    if policy == "random":
        # Seeded by (seed, problem id), so a problem's pick does not depend on which other problems are present.
        return [random.Random(f"{seed}:{key}").choice(cands)]
    length = response_length(cands)
    return [min(cands, key=lambda g: (length(g), g.sample))]


def _index(records: Iterable, what: str) -> dict[tuple[str, int], Any]:
    out: dict[tuple[str, int], Any] = {}
    for r in records:
        if r.key in out:
            raise ValueError(f"duplicate {what} for problem {r.id!r} sample {r.sample}")
        out[r.key] = r
    return out


def base_verdicts(base_grades: Iterable[Grade] | None) -> dict[str, Grade] | None:
    """The base model's greedy grade per problem (sample 0 when several samples were graded)."""
    if base_grades is None:
        return None
    out: dict[str, Grade] = {}
    for g in sorted(base_grades, key=lambda g: g.sample):
        out.setdefault(g.id, g)
    return out


def _domain(p: Problem) -> str | None:
    d = p.meta.get("domain")
    return d if isinstance(d, str) else ("visual" if p.images else None)


def _describe(values: list[int]) -> dict[str, float] | None:
    if not values:
        return None
    return {"n": len(values), "min": min(values), "mean": round(statistics.fmean(values), 1),
            "median": statistics.median(values), "max": max(values)}


def build_dataset(
    problems: Sequence[Problem],
    rollouts: Iterable[Generation],
    grades: Iterable[Grade],
    base_grades: Iterable[Grade] | None = None,
    *,
    band: str | Sequence[str] = "solved",
    policy: str = "shortest",
    seed: int = 0,
    random_size: int | None = None,
    band_spec: BandSpec = PAPER,
    format_spec: FormatSpec = FormatSpec(),
    source: str | None = None,
    count_tokens: Callable[[str], int] | None = None,
    n: int | None = None,
) -> tuple[list[LongThoughtExample], dict[str, Any]]:
    """Filter graded rollouts into long-thought examples; returns (examples, stats).

    ``n`` is the number of rollouts each problem should have (the run's ``--n``; default: the highest sample
    index seen + 1). A problem with fewer graded rollouts is incomplete: it gets no band and no example, and
    the stats count it. Rollouts with sample >= n (left from a run with a larger n) are ignored and counted.
    Every other rollout of a listed problem must have a grade (same (id, sample)); rollouts of other problems
    are counted and ignored. ``base_grades`` are the base model's greedy grades: problems it solves fall in
    the ``easy`` band and leave every selection except ``random``.
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    selection = parse_selection(band) if isinstance(band, str) else tuple(band)
    gens = _index(rollouts, "rollout")
    grade_of = _index(grades, "grade")
    problem_ids = {p.id for p in problems}
    if n is None:
        n = 1 + max((k[1] for k in gens if k[0] in problem_ids), default=-1)
    beyond_n = [k for k in gens if k[1] >= n]
    for k in beyond_n:
        del gens[k]
    ungraded = sorted(k for k in set(gens) - set(grade_of) if k[0] in problem_ids)
    if ungraded:
        raise ValueError(f"{len(ungraded)} rollout(s) have no grade, e.g. {ungraded[0]}; grade them first")
    base = base_verdicts(base_grades)

    by_problem: dict[str, list[Generation]] = defaultdict(list)
    for g in gens.values():
        by_problem[g.id].append(g)
    orphans = sum(len(v) for k, v in by_problem.items() if k not in problem_ids)

    tallies: list[ProblemTally] = []
    usable: dict[str, list[Generation]] = {}
    band_of: dict[str, str] = {}
    rejects: Counter[str] = Counter()
    checked = passed = correct_rejected = 0
    base_missing = 0
    incomplete: dict[str, int] = {}  # problem id -> rollouts still missing
    for p in problems:
        group = by_problem.get(p.id, [])
        if len(group) < n:
            incomplete[p.id] = n - len(group)
        if not group:
            continue
        if base is not None and p.id not in base:
            base_missing += 1
        t = tally(p.id, [grade_of[g.key] for g in group], None if base is None else base.get(p.id), n=n)
        tallies.append(t)
        band_of[p.id] = t.band(band_spec)
        ok = []
        for g in group:
            reasons = format_reasons(g, format_spec, count_tokens)
            checked += 1
            rejects.update(reasons)
            if not reasons:
                passed += 1
            if grade_of[g.key].correct:
                if reasons:
                    correct_rejected += 1
                else:
                    ok.append(g)
        if ok:
            usable[p.id] = ok

    chosen = select_band(tallies, selection, spec=band_spec, usable=set(usable), random_size=random_size, seed=seed)
    tally_of = {t.id: t for t in tallies}
    problem_of = {p.id: p for p in problems}
    examples: list[LongThoughtExample] = []
    selection_name = ",".join(selection)
    for pid in chosen:
        p, t = problem_of[pid], tally_of[pid]
        picks = choose(usable[pid], policy, seed=seed, key=pid)
        for g in picks:
            parsed = parse_response(g.text)
            grade = grade_of[g.key]
            examples.append(LongThoughtExample(
                id=f"{pid}#{g.sample}" if policy == "all" else pid,
                question=p.question,
                thought=(parsed.thought or "").strip(),
                solution=(parsed.solution or "").strip(),
                images=list(p.images),
                answer=p.answer,
                domain=_domain(p),
                source=source or g.model or "teacher",
                extra={
                    "band": band_of[pid], "selection": selection_name, "n_correct": t.n_correct,
                    "n_rollouts": t.n_rollouts, "pass_rate": round(t.pass_rate, 4), "base_correct": t.base_correct,
                    "sample": g.sample, "policy": policy, "verdict": grade.verdict, "graded_by": grade.graded_by,
                    "extracted": grade.extracted, "thought_chars": len((parsed.thought or "").strip()),
                    "thought_tokens": g.thought_tokens, "completion_tokens": g.completion_tokens,
                    "finish_reason": g.finish_reason, "teacher_settings": g.settings,
                },
            ))

    # Why problems with rollouts did not make it: no correct rollout, correct ones all failed the format
    # checks, or the band selection left them out.
    dropped: Counter[str] = Counter()
    kept = set(chosen)
    for t in tallies:
        if t.id in kept:
            continue
        if not t.complete:
            dropped["incomplete"] += 1
        elif t.n_correct == 0:
            dropped["no_correct_rollout"] += 1
        elif t.id not in usable:
            dropped["format"] += 1
        else:
            dropped[f"band_{band_of[t.id]}" if selection != ("random",) else "random_not_drawn"] += 1

    n_rollouts = len(gens) - orphans
    n_correct = sum(t.n_correct for t in tallies)
    # Per-problem rates only over complete problems: "1 correct" of 2 graded is not "1 of 5".
    complete = [t for t in tallies if t.complete]
    stats: dict[str, Any] = {
        "problems": len(problems),
        "problems_with_rollouts": len(tallies),
        "n": n,
        "rollouts": n_rollouts,
        "rollouts_without_problem": orphans,
        "rollouts_beyond_n": len(beyond_n),
        "incomplete": {"problems": len(incomplete), "rollouts_missing": sum(incomplete.values()),
                       "ids": list(incomplete)[:20]},
        "pass_rate": {
            "rollouts": round(n_correct / n_rollouts, 4) if n_rollouts else None,
            "problems_solved": round(sum(t.n_correct > 0 for t in complete) / len(complete), 4) if complete else None,
            "correct_per_problem": dict(sorted(Counter(str(t.n_correct) for t in complete).items(),
                                               key=lambda kv: int(kv[0]))),
        },
        "base": {"given": base is not None, "solved": sum(bool(t.base_correct) for t in tallies),
                 "missing": base_missing},
        "bands": {b: sum(1 for t in complete if band_of[t.id] == b) for b in BANDS},
        "format": {"checked": checked, "passed": passed, "correct_rejected": correct_rejected,
                   "rejects": dict(rejects.most_common())},
        "selection": {"band": selection_name, "policy": policy, "seed": seed, "random_size": random_size,
                      "band_spec": {"medium_min": band_spec.medium_min, "hard_min": band_spec.hard_min,
                                    "per": band_spec.per},
                      "problems": len(chosen), "examples": len(examples), "dropped": dict(dropped.most_common()),
                      "bands_of_selected": dict(Counter(band_of[pid] for pid in chosen).most_common())},
        "lengths": {
            "thought_chars": _describe([e.extra["thought_chars"] for e in examples]),
            "thought_tokens": _describe([e.extra["thought_tokens"] for e in examples
                                         if e.extra["thought_tokens"] is not None]),
            "completion_tokens": _describe([e.extra["completion_tokens"] for e in examples
                                            if e.extra["completion_tokens"] is not None]),
        },
    }
    return examples, stats
