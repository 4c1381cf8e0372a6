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
from dataclasses import dataclass, field
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
    """The rollouts of one problem to keep: ``shortest`` (ties: lowest sample), ``random`` (seeded per problem),
    ``all``."""
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


@dataclass
class Checked:
    """Every problem's tally, band and usable (correct, well-formed) rollouts, with the format-check counts."""

    tallies: list[ProblemTally] = field(default_factory=list)
    usable: dict[str, list[Generation]] = field(default_factory=dict)
    band_of: dict[str, str] = field(default_factory=dict)
    rejects: Counter[str] = field(default_factory=Counter)
    checked: int = 0
    passed: int = 0
    correct_rejected: int = 0
    base_missing: int = 0
    incomplete: dict[str, int] = field(default_factory=dict)  # problem id -> rollouts still missing

    def check(self, group: list[Generation], grade_of: dict, spec: FormatSpec, count_tokens: Any) -> list[Generation]:
        """The correct rollouts of one problem that pass the format checks (every rollout is checked)."""
        ok = []
        for g in group:
            reasons = format_reasons(g, spec, count_tokens)
            self.checked += 1
            self.rejects.update(reasons)
            self.passed += not reasons
            if grade_of[g.key].correct:
                if reasons:
                    self.correct_rejected += 1
                else:
                    ok.append(g)
        return ok


def _check_problems(problems: Sequence[Problem], by_problem: dict[str, list[Generation]], grade_of: dict,
                    base: dict[str, Grade] | None, n: int, band_spec: BandSpec, format_spec: FormatSpec,
                    count_tokens: Any) -> Checked:
    c = Checked()
    for p in problems:
        group = by_problem.get(p.id, [])
        if len(group) < n:
            c.incomplete[p.id] = n - len(group)
        if not group:
            continue
        if base is not None and p.id not in base:
            c.base_missing += 1
        t = tally(p.id, [grade_of[g.key] for g in group], None if base is None else base.get(p.id), n=n)
        c.tallies.append(t)
        c.band_of[p.id] = t.band(band_spec)
        ok = c.check(group, grade_of, format_spec, count_tokens)
        if ok:
            c.usable[p.id] = ok
    return c


def _example(p: Problem, t: ProblemTally, g: Generation, grade: Grade, *, band: str, selection: str, policy: str,
             source: str | None) -> LongThoughtExample:
    parsed = parse_response(g.text)
    thought = (parsed.thought or "").strip()
    return LongThoughtExample(
        id=f"{p.id}#{g.sample}" if policy == "all" else p.id, question=p.question, thought=thought,
        solution=(parsed.solution or "").strip(), images=list(p.images), answer=p.answer, domain=_domain(p),
        source=source or g.model or "teacher",
        extra={
            "band": band, "selection": selection, "n_correct": t.n_correct, "n_rollouts": t.n_rollouts,
            "pass_rate": round(t.pass_rate, 4), "base_correct": t.base_correct, "sample": g.sample, "policy": policy,
            "verdict": grade.verdict, "graded_by": grade.graded_by, "extracted": grade.extracted,
            "thought_chars": len(thought), "thought_tokens": g.thought_tokens,
            "completion_tokens": g.completion_tokens, "finish_reason": g.finish_reason,
            "teacher_settings": g.settings,
        })


def _dropped(c: Checked, chosen: Sequence[str], selection: tuple[str, ...]) -> Counter[str]:
    """Why problems with rollouts did not make it: no correct rollout, correct ones all failed the format checks,
    or the band selection left them out."""
    dropped: Counter[str] = Counter()
    kept = set(chosen)
    for t in c.tallies:
        if t.id in kept:
            continue
        if not t.complete:
            dropped["incomplete"] += 1
        elif t.n_correct == 0:
            dropped["no_correct_rollout"] += 1
        elif t.id not in c.usable:
            dropped["format"] += 1
        else:
            dropped[f"band_{c.band_of[t.id]}" if selection != ("random",) else "random_not_drawn"] += 1
    return dropped


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
    format_spec: FormatSpec | None = None,
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
    format_spec = format_spec or FormatSpec()
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

    c = _check_problems(problems, by_problem, grade_of, base, n, band_spec, format_spec, count_tokens)
    chosen = select_band(c.tallies, selection, spec=band_spec, usable=set(c.usable), random_size=random_size,
                         seed=seed)
    tally_of = {t.id: t for t in c.tallies}
    problem_of = {p.id: p for p in problems}
    selection_name = ",".join(selection)
    examples = [_example(problem_of[pid], tally_of[pid], g, grade_of[g.key], band=c.band_of[pid],
                         selection=selection_name, policy=policy, source=source)
                for pid in chosen for g in choose(c.usable[pid], policy, seed=seed, key=pid)]
    stats = _stats(problems, c, chosen, examples, n=n, rollouts=len(gens) - orphans, orphans=orphans,
                   beyond_n=len(beyond_n), base_given=base is not None, selection=selection, policy=policy,
                   seed=seed, random_size=random_size, band_spec=band_spec)
    return examples, stats


def _stats(problems: Sequence[Problem], c: Checked, chosen: Sequence[str], examples: list[LongThoughtExample], *,
           n: int, rollouts: int, orphans: int, beyond_n: int, base_given: bool, selection: tuple[str, ...],
           policy: str, seed: int, random_size: int | None, band_spec: BandSpec) -> dict[str, Any]:
    n_correct = sum(t.n_correct for t in c.tallies)
    # Per-problem rates only over complete problems: "1 correct" of 2 graded is not "1 of 5".
    complete = [t for t in c.tallies if t.complete]
    lengths = {key: _describe([e.extra[key] for e in examples if e.extra[key] is not None])
               for key in ("thought_chars", "thought_tokens", "completion_tokens")}
    return {
        "problems": len(problems),
        "problems_with_rollouts": len(c.tallies),
        "n": n,
        "rollouts": rollouts,
        "rollouts_without_problem": orphans,
        "rollouts_beyond_n": beyond_n,
        "incomplete": {"problems": len(c.incomplete), "rollouts_missing": sum(c.incomplete.values()),
                       "ids": list(c.incomplete)[:20]},
        "pass_rate": {
            "rollouts": round(n_correct / rollouts, 4) if rollouts else None,
            "problems_solved": round(sum(t.n_correct > 0 for t in complete) / len(complete), 4) if complete else None,
            "correct_per_problem": dict(sorted(Counter(str(t.n_correct) for t in complete).items(),
                                               key=lambda kv: int(kv[0]))),
        },
        "base": {"given": base_given, "solved": sum(bool(t.base_correct) for t in c.tallies),
                 "missing": c.base_missing},
        "bands": {b: sum(1 for t in complete if c.band_of[t.id] == b) for b in BANDS},
        "format": {"checked": c.checked, "passed": c.passed, "correct_rejected": c.correct_rejected,
                   "rejects": dict(c.rejects.most_common())},
        "selection": {"band": ",".join(selection), "policy": policy, "seed": seed, "random_size": random_size,
                      "band_spec": {"medium_min": band_spec.medium_min, "hard_min": band_spec.hard_min,
                                    "per": band_spec.per},
                      "problems": len(chosen), "examples": len(examples),
                      "dropped": dict(_dropped(c, chosen, selection).most_common()),
                      "bands_of_selected": dict(Counter(c.band_of[pid] for pid in chosen).most_common())},
        "lengths": lengths,
    }
