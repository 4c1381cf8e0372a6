"""What a run folder and a sweep folder hold, and how to read them: the one place that names their files.

`virgo.eval.run` writes run folders, `virgo.eval.sweep` sweep folders; the report, the viewer and the demo only
read them, through this module, so no reader has to import the code that runs an evaluation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from virgo.records import Generation, read_records

RUN_FILE, PROBLEMS_FILE, GENERATIONS_FILE = "run.json", "problems.jsonl", "generations.jsonl"
GRADES_FILE, METRICS_FILE, MANIFEST_FILE = "grades.jsonl", "metrics.json", "manifest.json"
PARTIAL_GRADES_FILE = "grades.jsonl.partial"  # grades of a scoring in progress (see virgo.eval.run)
SWEEP_FILE = "sweep.json"
CURVE = "plots/budget-curve.png"


def read_generations(path: Path) -> list[Generation]:
    """Generations of a run, one per (id, sample) (first wins); unreadable lines are reported, not fatal."""
    if not path.exists():
        return []
    result = read_records(path, Generation, strict=False, resolve_images=False)
    result.warn_skipped("generation").require_usable(allow_empty=True)  # every line bad: NoUsableRecords
    seen: set[tuple[str, int]] = set()
    out = []
    for g in result.records:
        if g.key not in seen:
            seen.add(g.key)
            out.append(g)
    return out


def budget_dir(out: str | Path, budget: int) -> Path:
    return Path(out) / f"budget-{budget}"


def is_sweep(d: str | Path) -> bool:
    return (Path(d) / SWEEP_FILE).is_file()


def read_info(d: str | Path) -> dict[str, Any]:
    return json.loads((Path(d) / SWEEP_FILE).read_text(encoding="utf-8"))


def run_dirs(d: str | Path) -> list[Path]:
    """The budget runs of a sweep that have started, smallest budget first."""
    return [budget_dir(d, b) for b in read_info(d)["budgets"] if (budget_dir(d, b) / "run.json").is_file()]


def _row(d: Path, budget: int) -> dict[str, Any]:
    m = json.loads((d / METRICS_FILE).read_text(encoding="utf-8")) if (d / METRICS_FILE).is_file() else {}
    gens = read_generations(d / GENERATIONS_FILE)
    forced = sum(1 for g in gens if g.extra.get("budget_forced"))
    return {"budget": budget, "dir": d.name, "accuracy": m.get("accuracy"), "stderr": m.get("stderr"), "n": m.get("n"),
            "mean_thought_tokens": ((m.get("thought") or {}).get("reasoning_length") or {}).get("mean"),
            "budget_forced": forced / len(gens) if gens else None,
            "reused": sum(1 for g in gens if "reused_from_budget" in g.extra), "generations": len(gens)}


def read_table(d: str | Path) -> dict[str, Any]:
    """The sweep's table, computed from its runs' files (so a re-scored run shows its new numbers)."""
    info = read_info(d)
    rows = [_row(budget_dir(d, b), b) for b in info["budgets"] if (budget_dir(d, b) / "run.json").is_file()]
    return {"dir": str(d), "label": info.get("label"), "benchmark": info.get("benchmark"),
            "force_wait": info["generate"].get("force_wait"), "temperature": info["generate"].get("temperature"),
            "rows": rows}


def sweep_name(table: dict[str, Any]) -> str:
    """How a sweep is named in reports: its label or folder, with its forcing."""
    base = table.get("label") or Path(table["dir"]).name
    return f"{base} (force_wait {table['force_wait']})" if table.get("force_wait") else base
