"""The one seam for a benchmark's own official metrics (We-Math's four dimensions, DynaMath's worst case, ...).

A benchmark spec names a hook (``metrics: wemath``): a function ``official_metrics(inp: OfficialInput) -> dict``
in its loader module. It gets the problems and, for one sample pass, each problem's grade and generation, and
returns plain JSON::

    {"title": "We-Math four-dimensional metrics",
     "summary": [{"name": "Score (strict)", "value": 0.41, "format": "pct"}, ...],   # compared across runs
     "tables": [{"title": "...", "columns": ["", "count", "rate %"], "formats": ["text", "int", "pct"],
                 "rows": [["IK", 3, 0.12], ...]}],
     "notes": ["..."]}

With n samples per problem the hook runs once per sample pass and numeric cells are averaged over the passes (the
official scripts score one response per item; the average is their expectation over sampling). The report renders
whatever a hook returns (`render`), so report.py has no per-benchmark code.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from typing import Any

from virgo.eval.markdown import table
from virgo.records import Generation, Grade, Problem

FORMATS = ("text", "pct", "int", "float")


@dataclasses.dataclass
class OfficialInput:
    """One sample pass: every problem, and the grade / generation of each that has one."""

    problems: list[Problem]
    grades: dict[str, Grade]
    generations: dict[str, Generation]
    sample: int = 0

    def correct(self, pid: str) -> bool:
        g = self.grades.get(pid)
        return g is not None and g.correct

    def extracted(self, pid: str) -> str | None:
        """The grader's extracted answer, or None when the response gave none (or was cut off)."""
        g = self.grades.get(pid)
        return g.extracted if g is not None and g.verdict in ("correct", "wrong") else None


def compute(hook_ref: str | None, problems: Sequence[Problem], generations: Sequence[Generation],
            grades: Sequence[Grade]) -> dict[str, Any] | None:
    """The hook's metrics, averaged over sample passes; None when the benchmark has no hook."""
    from virgo.eval.benchmarks.base import metrics_hook

    fn = metrics_hook(hook_ref)
    if fn is None:
        return None
    samples = sorted({g.sample for g in grades}) or [0]
    results = []
    for s in samples:
        inp = OfficialInput(list(problems), {g.id: g for g in grades if g.sample == s},
                            {g.id: g for g in generations if g.sample == s}, s)
        results.append(fn(inp))
    out = average(results)
    out["samples"] = len(results)
    out["hook"] = hook_ref
    return out


def _mean(values: list[Any]) -> Any:
    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(nums) != len(values):
        return values[0]  # text, or a cell missing in some pass: the first pass's
    return statistics.fmean(nums) if len(nums) > 1 else nums[0]


def average(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Cell-wise mean of hook results with the same shape (else the first pass's, with a note)."""
    first = dict(results[0])
    if len(results) == 1:
        return first
    same_shape = all(
        [s["name"] for s in r.get("summary", [])] == [s["name"] for s in first.get("summary", [])]
        and [(t["title"], [row[0] for row in t["rows"]]) for t in r.get("tables", [])]
        == [(t["title"], [row[0] for row in t["rows"]]) for t in first.get("tables", [])] for r in results)
    if not same_shape:
        first.setdefault("notes", []).append("sample passes differ in shape: the first pass is shown")
        return first
    first["summary"] = [{**s, "value": _mean([r["summary"][i]["value"] for r in results])}
                        for i, s in enumerate(first.get("summary", []))]
    tables = []
    for ti, t in enumerate(first.get("tables", [])):
        rows = [[_mean([r["tables"][ti]["rows"][ri][ci] for r in results]) for ci in range(len(row))]
                for ri, row in enumerate(t["rows"])]
        tables.append({**t, "rows": rows})
    first["tables"] = tables
    first.setdefault("notes", []).append(f"averaged over {len(results)} sample passes")
    return first


# ----------------------------------------------------------------------------- rendering (report.py calls these)

def cell(value: Any, fmt: str = "text") -> str:
    if value is None:
        return "—"
    if fmt == "pct":
        return f"{100 * value:.1f}"
    if fmt == "int":
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    if fmt == "float":
        return f"{value:.3f}"
    return str(value)


def render(runs: list[tuple[str, dict[str, Any]]]) -> str:
    """Markdown: per benchmark, the summary side by side across runs, then each run's tables."""
    with_official = [(name, m) for name, m in runs if m.get("official")]
    if not with_official:
        return ""
    parts = [("## Official metrics\n\nEach benchmark's own metric definitions (see its loader's docstring); "
              "percentages unless the column says otherwise.")]
    by_title: dict[str, list[tuple[str, dict]]] = {}
    for name, m in with_official:
        by_title.setdefault(m["official"]["title"], []).append((name, m["official"]))
    for title, group in by_title.items():
        names = []
        for _, off in group:
            names += [s["name"] for s in off.get("summary", []) if s["name"] not in names]
        rows = []
        for run, off in group:
            vals = {s["name"]: s for s in off.get("summary", [])}
            rows.append([run] + [cell(vals[n]["value"], vals[n].get("format", "pct")) if n in vals else "—"
                                 for n in names])
        parts.append(f"### {title}\n\n" + table(["run"] + names, rows))
        for run, off in group:
            for t in off.get("tables", []):
                fmts = t.get("formats") or ["text"] * len(t["columns"])
                body = [[cell(v, f) for v, f in zip(row, fmts)] for row in t["rows"]]
                parts.append(f"#### {run}: {t['title']}\n\n" + table(t["columns"], body))
            notes = off.get("notes") or []
            if notes:
                parts.append("\n".join(f"- {n}" for n in notes))
    return "\n\n".join(parts)


def summary_table(title: str, values: list[tuple[str, Any, str]]) -> list[dict[str, Any]]:
    """Hook helper: ``[(name, value, format), ...]`` -> the ``summary`` list."""
    for _, _, fmt in values:
        if fmt not in FORMATS:
            raise ValueError(f"{title}: unknown format {fmt!r}")
    return [{"name": n, "value": v, "format": f} for n, v, f in values]


def accuracy_rows(groups: dict[str, list[bool]]) -> list[list[Any]]:
    """Hook helper: ``{label: [correct, ...]}`` -> rows ``[label, n, correct, accuracy]``."""
    return [[label, len(v), sum(v), (sum(v) / len(v)) if v else None] for label, v in groups.items()]


ACCURACY_COLUMNS = {"columns": ["", "n", "correct", "accuracy %"], "formats": ["text", "int", "int", "pct"]}


def grouped(problems: Sequence[Problem], key: str, correct: dict[str, bool]) -> dict[str, list[bool]]:
    """Hook helper: correctness grouped by ``meta[key]``; a list value counts the item in each of its members
    (MathVista's skills, LogicVista's skills). Groups sorted by name, so sample passes line up."""
    groups: dict[str, list[bool]] = {}
    for p in problems:
        if p.id not in correct:
            continue
        value = p.meta.get(key)
        for v in (value if isinstance(value, list) else [value]):
            groups.setdefault("(none)" if v in (None, "") else str(v), []).append(correct[p.id])
    return dict(sorted(groups.items()))


def breakdown_tables(problems: Sequence[Problem], keys: Sequence[str | tuple[str, str]], correct: dict[str, bool],
                     what: str = "accuracy") -> list[dict[str, Any]]:
    """Hook helper: one accuracy table per meta key (``(label, meta_key)`` where the official name differs)."""
    out = []
    for key in keys:
        label, meta_key = key if isinstance(key, tuple) else (key, key)
        if any(p.meta.get(meta_key) not in (None, "", []) for p in problems):
            out.append({"title": f"{what} by {label}", **ACCURACY_COLUMNS,
                        "rows": accuracy_rows(grouped(problems, meta_key, correct))})
    return out
