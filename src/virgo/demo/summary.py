"""Several seeds of the demo side by side: per-seed numbers, mean ± std, and how many seeds each finding holds on.

The paper's claim is only reproduced here if it holds seed after seed, so the summary never averages a finding
away: it lists each seed's numbers and counts the seeds on which each claim holds.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from virgo.demo.data import EVAL_SETS
from virgo.demo.report import average, findings, pct


def summarize(runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """``runs`` maps seed -> that seed's results.json; returns the summary document."""
    seeds = sorted(runs)
    variants = [v for v in runs[seeds[0]]["variants"] if all(v in runs[s]["variants"] for s in seeds)]
    table: dict[str, dict[str, Any]] = {}
    for v in variants:
        row: dict[str, Any] = {}
        for s in (*EVAL_SETS, "average"):
            vals = [average(runs[k]["variants"][v]) if s == "average" else runs[k]["variants"][v][s]["accuracy"]
                    for k in seeds]
            row[s] = {"per_seed": vals, "mean": statistics.fmean(vals),
                      "std": statistics.stdev(vals) if len(vals) > 1 else 0.0}
        vh = [runs[k]["variants"][v]["visual_hard"] for k in seeds]
        row["think_rate_visual_hard"] = [e["think_rate"] for e in vh]
        row["mean_thought_tokens_visual_hard"] = [e["mean_thought_tokens"] for e in vh]
        row["perception_fidelity_visual_hard"] = [e["perception_fidelity"] for e in vh]
        table[v] = row
    claims: dict[str, dict[str, Any]] = {}
    for k in seeds:
        for claim, holds, numbers in findings(runs[k]):
            c = claims.setdefault(claim, {"holds_on": [], "fails_on": [], "numbers": {}})
            c["holds_on" if holds else "fails_on"].append(k)
            c["numbers"][k] = numbers
    return {"seeds": seeds, "variants": table, "findings": claims,
            "seconds": {k: runs[k]["total_seconds"] for k in seeds}}


def write_summary(summary: dict[str, Any], out: Path) -> Path:
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    seeds = summary["seeds"]
    lines = [f"# Toy Virgo over {len(seeds)} seeds ({', '.join(map(str, seeds))})", "",
             ("Accuracy (%) on held-out questions: mean ± std over seeds, then each seed. The base model and the "
             "test items are the same for every seed; the seed changes the fine-tuning and the self-distillation "
             "sampling."), "",
             "| model | " + " | ".join(s.replace("_", " ") for s in (*EVAL_SETS, "average"))
             + " | per seed (visual hard) |",
             "|---|" + "---|" * (len(EVAL_SETS) + 2)]
    for v, row in summary["variants"].items():
        cells = [f"{pct(row[s]['mean'])} ± {pct(row[s]['std'])}" for s in (*EVAL_SETS, "average")]
        lines.append(f"| {v} | " + " | ".join(cells) + " | "
                     + ", ".join(pct(x) for x in row["visual_hard"]["per_seed"]) + " |")
    lines += ["", "## Findings, seed by seed", ""]
    for claim, c in summary["findings"].items():
        lines.append(f"- **{len(c['holds_on'])} of {len(seeds)} seeds**: {claim}.")
        lines += [f"  - seed {k}: {'holds' if k in c['holds_on'] else 'does NOT hold'}: {n}"
                  for k, n in c["numbers"].items()]
    lines += ["", "Per-seed folders hold each seed's results.json, report.md, plots, generations and grades.", ""]
    path = out / "summary.md"
    path.write_text("\n".join(lines))
    return path
