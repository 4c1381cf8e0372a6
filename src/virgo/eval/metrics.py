"""Metrics of one run: accuracy with standard error, verdict counts, breakdowns, thought analytics.

Accuracy is correct / n over every graded (problem, sample), n including wrong, no-answer and
truncated verdicts; the standard error is sqrt(p (1 - p) / n). Verdicts are never merged: a
truncated generation stays "truncated". Thought analytics say what accuracy cannot: how long the
model thought (tokens), how often it reflected (the shared lexicon in ``virgo.data.analytics``), and
how both relate to correctness and difficulty. Everything here is deterministic, so re-scoring the
same generations gives byte-identical ``metrics.json``.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from virgo.records import VERDICTS, Generation, Grade, Problem

# Reasoning-length buckets (tokens): fixed doubling edges so runs of different models line up.
BUCKET_EDGES = (0, 128, 256, 512, 1024, 2048, 4096, 8192)


def accuracy_block(grades: list[Grade]) -> dict[str, Any]:
    """n, correct, accuracy, standard error and verdict counts of a set of grades (on ``virgo.grade.summarize``)."""
    from virgo.grade import summarize

    s = summarize(grades)
    n, correct = s["n"], s["verdicts"]["correct"]
    p = correct / n if n else None
    return {"n": n, "correct": correct, "accuracy": p, "stderr": math.sqrt(p * (1 - p) / n) if n else None,
            "verdicts": s["verdicts"]}


def describe(values: list[float]) -> dict[str, Any]:
    """count, mean, median, p90, min, max of a list of numbers (None values when empty)."""
    if not values:
        return {"count": 0, "mean": None, "median": None, "p90": None, "min": None, "max": None}
    s = sorted(values)
    return {"count": len(s), "mean": statistics.fmean(s), "median": statistics.median(s),
            "p90": s[min(len(s) - 1, math.ceil(0.9 * len(s)) - 1)], "min": s[0], "max": s[-1]}


def bucket_label(lo: float, hi: float) -> str:
    return f"({lo}, {hi}]" if hi != math.inf else f"> {lo}"


def reasoning_length(gen: Generation) -> int | None:
    """Tokens spent reasoning: the thought when the response has one, else the whole completion.

    A model without the long-thought format reasons in its answer, so its completion length is the
    comparable number (the paper's Figure 2 compares response lengths the same way).
    """
    if gen.thought is not None and gen.thought_tokens is not None:
        return gen.thought_tokens
    return gen.completion_tokens


def _meta_value(problem: Problem | None, key: str) -> str:
    v = None if problem is None else problem.meta.get(key)
    return "(none)" if v is None or v == "" else str(v)


# Difficulty names in rising order (MMMU's topic_difficulty: Easy/Medium/Hard), so tables and plots read easy to hard.
DIFFICULTY_ORDER = ("very easy", "easy", "medium", "hard", "very hard")


def _sort_key(value: str):
    # Numeric levels sort as numbers (1, 2, ..., 10), difficulty names by difficulty, other names alphabetically,
    # "(none)" last.
    try:
        return (0, float(value), "")
    except ValueError:
        pass
    if value.lower() in DIFFICULTY_ORDER:
        return (1, float(DIFFICULTY_ORDER.index(value.lower())), value)
    return (2 if value != "(none)" else 3, 0.0, value)


def breakdowns(problems: dict[str, Problem], grades: list[Grade], keys: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in keys:
        groups: dict[str, list[Grade]] = defaultdict(list)
        for g in grades:
            groups[_meta_value(problems.get(g.id), key)].append(g)
        if set(groups) == {"(none)"}:
            continue  # the key does not apply to these items
        out[key] = {v: accuracy_block(groups[v]) for v in sorted(groups, key=_sort_key)}
    return out


def thought_analytics(problems: dict[str, Problem], generations: list[Generation], grades: list[Grade],
                      keys: Iterable[str]) -> dict[str, Any]:
    from virgo.data.analytics import count_reflections

    by_key = {g.key: g for g in grades}
    lengths: list[int] = []
    thought_lengths: list[int] = []
    completion: list[int] = []
    bucket_grades: dict[int, list[Grade]] = defaultdict(list)
    length_by: dict[str, dict[str, list[int]]] = {k: defaultdict(list) for k in keys}
    length_by_verdict: dict[str, list[int]] = defaultdict(list)
    phrase_totals: Counter = Counter()
    reflect_counts: list[int] = []
    with_reflection: list[Grade] = []
    without_reflection: list[Grade] = []
    status = Counter()
    finish = Counter()
    for gen in generations:
        grade = by_key.get(gen.key)
        status[gen.status or "unknown"] += 1
        finish[gen.finish_reason] += 1
        if gen.completion_tokens is not None:
            completion.append(gen.completion_tokens)
        if gen.thought is not None and gen.thought_tokens is not None:
            thought_lengths.append(gen.thought_tokens)
        # Reflection is counted in the thought when there is one, else in the whole response.
        counts = count_reflections(gen.thought if gen.thought is not None else gen.text)
        phrase_totals.update(counts)
        total = sum(counts.values())
        reflect_counts.append(total)
        if grade is not None:
            (with_reflection if total else without_reflection).append(grade)
        length = reasoning_length(gen)
        if length is None:
            continue
        lengths.append(length)
        if grade is not None:
            bucket_grades[_bucket(length)].append(grade)
            length_by_verdict[grade.verdict].append(length)
        for k in keys:
            length_by[k][_meta_value(problems.get(gen.id), k)].append(length)
    buckets = []
    for i in sorted(bucket_grades):
        lo = BUCKET_EDGES[i]
        hi = BUCKET_EDGES[i + 1] if i + 1 < len(BUCKET_EDGES) else math.inf
        block = accuracy_block(bucket_grades[i])
        buckets.append({"range": bucket_label(lo, hi), "lo": lo, "hi": None if hi == math.inf else hi, **block})
    n = len(generations)
    return {
        "length_unit": "tokens",
        "n": n,
        "status": dict(sorted(status.items())),
        "finish_reason": dict(sorted(finish.items())),
        "with_thought": len(thought_lengths),
        "reasoning_length": describe(lengths),
        "thought_tokens": describe(thought_lengths),
        "completion_tokens": describe(completion),
        "length_histogram": _histogram(lengths),
        "accuracy_by_length": buckets,
        "length_by_verdict": {v: describe(length_by_verdict[v]) for v in VERDICTS if length_by_verdict[v]},
        "length_by": {k: {v: describe(vals[v]) for v in sorted(vals, key=_sort_key)}
                      for k, vals in length_by.items() if vals and set(vals) != {"(none)"}},
        "reflections": {
            "total": sum(reflect_counts),
            "mean_per_response": statistics.fmean(reflect_counts) if reflect_counts else None,
            "share_with_any": (sum(1 for c in reflect_counts if c) / n) if n else None,
            "by_phrase": dict(sorted(phrase_totals.items(), key=lambda kv: (-kv[1], kv[0]))),
            "accuracy_with": accuracy_block(with_reflection)["accuracy"],
            "accuracy_without": accuracy_block(without_reflection)["accuracy"],
        },
    }


def _bucket(length: int) -> int:
    for i in range(len(BUCKET_EDGES) - 1, -1, -1):
        if length > BUCKET_EDGES[i] or i == 0:
            return i
    return 0


def _histogram(values: list[int], bins: int = 20) -> dict[str, list]:
    """Equal-width histogram (edges, counts) for plots and JSON readers."""
    if not values:
        return {"edges": [], "counts": []}
    lo, hi = min(values), max(values)
    if lo == hi:
        return {"edges": [lo, hi + 1], "counts": [len(values)]}
    width = (hi - lo) / bins
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / width))] += 1
    return {"edges": [lo + i * width for i in range(bins + 1)], "counts": counts}


def compute_metrics(problems: list[Problem], generations: list[Generation], grades: list[Grade],
                    *, breakdown_keys: Iterable[str] = ()) -> dict[str, Any]:
    """All metrics of one run as a JSON-ready dict (see the module docstring)."""
    keys = list(breakdown_keys)
    by_id = {p.id: p for p in problems}
    generated = {g.id for g in generations}
    from virgo.grade import summarize

    overall = accuracy_block(grades)
    summary = summarize(grades)
    samples = Counter(g.id for g in grades)
    return {
        **overall,
        "n_problems": len(problems),
        "n_missing": sum(1 for p in problems if p.id not in generated),
        "samples_per_problem": max(samples.values()) if samples else 0,
        "graded_by": dict(sorted(summary["graded_by"].items())),
        "extracted_by": dict(sorted(summary["extracted_by"].items())),
        "breakdowns": breakdowns(by_id, grades, keys),
        "thought": thought_analytics(by_id, generations, grades, keys),
    }
