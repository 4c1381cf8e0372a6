"""Report sections for n samples per problem (pass@k, maj@k, mean@k) and for runs repeated with other seeds.

The numbers come from ``metrics.json`` (``virgo.eval.sampling``); these functions only lay them out, for any number
of runs side by side. ``show_k`` picks the k shown (default: 1, 2, 4, ... and n); every k is in metrics.json.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from virgo.eval import layout
from virgo.eval.markdown import pct, table
from virgo.eval.sampling import across_seeds, default_ks


def shown_ks(runs: list[Any], show_k: list[int] | None) -> list[int]:
    n = max((r.metrics.get("sampling", {}).get("n", 0) for r in runs), default=0)
    return sorted(k for k in (show_k or default_ks(n)) if k <= n)


def section_sampling(runs: list[Any], show_k: list[int] | None = None) -> str:
    """pass@k, maj@k and mean@k ± s.e. per run, for the k shown; empty when every run has one sample."""
    sampled = [r for r in runs if r.metrics.get("sampling", {}).get("n", 0) > 1]
    if not sampled:
        return ""
    ks = shown_ks(sampled, show_k)
    rows = []
    for r in sampled:
        s = r.metrics["sampling"]
        for k in ks:
            key = str(k)
            if key not in s["pass@k"]:
                continue
            mean = s["mean@k"][key]
            se = "" if mean["stderr"] is None else f" ± {pct(mean['stderr'])}"
            rows.append([r.name, str(k), pct(s["pass@k"][key]["value"]), pct(s["maj@k"][key]["value"]),
                         pct(mean["value"]) + se, str(s["pass@k"][key]["n_problems"])])
    text = ("## Sampling: pass@k, maj@k, mean@k\n\n"
            "pass@k: the unbiased estimator of Chen et al. (2021) from all n samples. maj@k: a majority vote over the "
            "answers of the first k samples, answers grouped by the grader's equivalence (ties go to the answer "
            "given first; a sample with no answer does not vote). mean@k: the accuracy of the first k samples ± the "
            "standard error across the k sample passes. Accuracies in %.\n\n")
    return text + table(["run", "k", "pass@k", "maj@k", "mean@k ± s.e.", "problems"], rows)


def seed_groups(runs: list[Any]) -> list[dict[str, Any]]:
    """Runs of one model, benchmark, split and ablation made with different seeds: mean accuracy ± s.e. over them."""
    groups: dict[tuple, list[Any]] = defaultdict(list)
    for r in runs:
        groups[(r.label, r.benchmark, r.info.get("split"), r.captioned)].append(r)
    out = []
    for (label, bench, split, captioned), group in groups.items():
        seeds = [(r.info.get("generate") or {}).get("seed") for r in group]
        if len(group) < 2 or len(set(seeds)) < 2:
            continue
        stats = across_seeds([r.metrics.get("accuracy") for r in group])
        out.append({"label": label, "benchmark": bench, "split": split, "captions": captioned, "seeds": seeds,
                    "accuracies": [r.metrics.get("accuracy") for r in group], **stats})
    return out


def section_seeds(runs: list[Any]) -> str:
    groups = seed_groups(runs)
    if not groups:
        return ""
    rows = [[g["label"], g["benchmark"] + (" (captions)" if g["captions"] else ""), str(g["split"]),
             ", ".join(map(str, g["seeds"])), ", ".join(pct(a) for a in g["accuracies"]),
             pct(g["mean"]) + ("" if g["stderr"] is None else f" ± {pct(g['stderr'])}")] for g in groups]
    return ("## Across seeds\n\nThe same model and benchmark run with different seeds: the mean accuracy and its "
            "standard error across the runs (stdev / sqrt(runs)).\n\n"
            + table(["model", "benchmark", "split", "seeds", "accuracy % per run", "mean % ± s.e."], rows))


def section_sweeps(sweeps: list[Path], out: Path) -> str:
    """The sweep table(s) and the curve (written to ``out/plots/budget-curve.png``), for `virgo report`."""
    if not sweeps:
        return ""
    from virgo.eval import plots

    tables = [layout.read_table(d) for d in sweeps]
    plots.budget_curves(out / layout.CURVE, "Accuracy against thinking tokens used",
                        {layout.sweep_name(t): t["rows"] for t in tables})
    parts = [("## Thinking-budget sweep\n\nOne run per thought-token budget. \"Thinking tokens used\" is the mean "
             "reasoning length actually spent; \"cut by budget\" the share of responses whose thought the budget "
             "closed; \"reused\" the greedy responses carried over unchanged from the next smaller budget (their "
             "thought ended under it, so this budget generates the same text).")]
    for t in tables:
        rows = [[str(r["budget"]), "—" if r["accuracy"] is None else
                 f"{100 * r['accuracy']:.1f} ± {100 * (r['stderr'] or 0):.1f}", str(r["n"]),
                 "—" if r["mean_thought_tokens"] is None else f"{r['mean_thought_tokens']:.0f}",
                 "—" if r["budget_forced"] is None else f"{100 * r['budget_forced']:.0f}", str(r["reused"]),
                 f"[{r['dir']}]({os.path.relpath(Path(t['dir']) / r['dir'], out)})"] for r in t["rows"]]
        header = ["budget", "accuracy % ± s.e.", "n", "thinking tokens used", "cut by budget %", "reused", "run"]
        parts.append(f"### {layout.sweep_name(t)}: {t['benchmark']}, temperature {t['temperature']}\n\n"
                     + table(header, rows))
    parts.append(f"![accuracy against thinking tokens]({layout.CURVE})")
    return "\n\n".join(parts)
