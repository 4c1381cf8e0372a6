"""Thinking-budget sweep: one eval run per budget, then accuracy against the thinking tokens actually used (the s1
figure, arXiv 2501.19393 Fig. 1).

Sweep folder::

    sweep.json          the budgets and what every run shares (model, benchmark, decoding but the budget)
    budget-<B>/         an ordinary `virgo eval` run folder per budget (resumable, re-scorable, viewable)
    report.md           the table (accuracy, mean thought tokens used, share cut by the budget, reused) and
    plots/budget-curve.png   accuracy against mean thought tokens used, one point per budget

Resuming: rerunning the same command continues each budget's run where it stopped; giving more budgets adds runs.

**Reuse across budgets.** A generation made under budget b is copied into the run of the next larger budget b'
only where that run would produce exactly the same text: decoding is greedy (temperature 0), there is no s1
forcing (``force_wait`` 0), and the budget never intervened (the record says ``budget_forced: false``: the thought
ended, or the completion stopped, before b thought tokens). The budget control acts only once the thought reaches
its cap, so under b' > b the same tokens are chosen at every step. Sampled generations are never reused (their
continuation is a draw), nor forced-"Wait" ones (forcing changes the thought whatever the cap). Copied records keep
their text and get ``settings.thinking_budget = b'`` and ``extra.reused_from_budget = b``. (Exact as decoding;
batched float arithmetic on a GPU may still differ in the last bits from a fresh run.)
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from pathlib import Path
from typing import Any

from virgo.eval.layout import SWEEP_FILE, budget_dir, read_info, read_table, run_dirs  # noqa: F401 - re-exported
from virgo.records import AppendWriter, Generation, Problem, done_keys


def reusable(gen: Generation, budget: int) -> bool:
    """Whether ``gen`` (made under ``budget``) is exactly what any larger budget would generate."""
    s, thought = gen.settings, gen.thought_tokens
    return (s.get("temperature") == 0 and not s.get("force_wait") and s.get("thinking_budget") == budget
            and gen.extra.get("budget_forced") is False and (thought is None or thought < budget))


def carry_over(prev: Path, prev_budget: int, dest: Path, budget: int, problem_ids: set[str]) -> int:
    """Copy the reusable generations of the run ``prev`` into ``dest`` (those not there yet); returns how many."""
    from virgo.eval.layout import GENERATIONS_FILE, read_generations

    src, out = prev / GENERATIONS_FILE, dest / GENERATIONS_FILE
    if not src.is_file():
        return 0
    done = done_keys(out)
    todo = [g for g in read_generations(src) if g.key not in done and g.id in problem_ids and reusable(g, prev_budget)]
    if not todo:
        return 0
    dest.mkdir(parents=True, exist_ok=True)
    with AppendWriter(out) as w:
        for g in todo:
            w.write(dataclasses.replace(g, settings={**g.settings, "thinking_budget": budget},
                                        extra={**g.extra, "reused_from_budget": prev_budget}))
    return len(todo)


def _prepare(out: Path, budgets: list[int], shared: dict[str, Any]) -> list[int]:
    """Create or check sweep.json (an existing sweep may gain budgets, not change anything else)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / SWEEP_FILE
    if path.is_file():
        old = read_info(out)
        diffs = [k for k in shared if old.get(k) != shared[k]]
        if diffs:
            from virgo.eval.run import RunMismatchError

            raise RunMismatchError(f"{out} holds a sweep with other settings ({', '.join(diffs)} differ); use a new "
                                   "--out folder")
        budgets = sorted(set(old["budgets"]) | set(budgets))
        shared = {**old, **shared}
    else:
        shared = {**shared, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    info = {**shared, "budgets": sorted(budgets)}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return info["budgets"]


def run_sweep(model: Any, problems: list[Problem], out: str | Path, gen_cfg: Any, budgets: list[int], *,
              label: str | None = None, benchmark: str | None = None, log=print, show_k: list[int] | None = None,
              **eval_kw: Any) -> list[dict[str, Any]]:
    """Evaluate ``problems`` once per budget (smallest first, reusing what is exactly reusable); returns the table."""
    from virgo.eval.report import render_report
    from virgo.eval.run import _model_name, evaluate

    out = Path(out)
    shared = {"model": _model_name(model), "benchmark": benchmark, "label": label,
              "generate": {k: v for k, v in dataclasses.asdict(gen_cfg).items() if k != "thinking_budget"},
              "problems": [p.id for p in problems]}
    budgets = _prepare(out, budgets, shared)
    ids = {p.id for p in problems}
    reuse = gen_cfg.greedy and gen_cfg.force_wait == 0
    for i, b in enumerate(budgets):
        d = budget_dir(out, b)
        reused = carry_over(budget_dir(out, budgets[i - 1]), budgets[i - 1], d, b, ids) if reuse and i else 0
        log(f"budget {b}: {reused} generation(s) reused from budget {budgets[i - 1]}" if reused else f"budget {b}")
        evaluate(model, problems, d, gen_cfg.replace(thinking_budget=b), label=f"{label or Path(str(model)).name} "
                 f"(budget {b})", benchmark=benchmark, report=False, **eval_kw)
    render_report([out], show_k=show_k)
    return read_table(out)["rows"]
