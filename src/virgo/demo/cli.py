"""`virgo demo`: the paper's central experiment in miniature on a CPU."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def demo_cmd(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Run folder: data, models, evaluations, "
                             "results.json, report.md and plots. Rerunning with the same folder resumes."),
    seed: List[int] = typer.Option([0], "--seed", help="Seed of the Virgo-T/SD training and the self-distillation "
                                   "sampling (the base model and the held-out questions stay fixed). Repeat it "
                                   "(--seed 0 --seed 1 --seed 2) to run several seeds into OUT/seed-S and write "
                                   "OUT/summary.md: per-seed numbers and on how many seeds each finding holds."),
    quick: bool = typer.Option(False, "--quick", help="A few training steps and small question sets: checks that "
                               "every stage runs (about 30 s on 2 cores); the numbers mean nothing."),
    rebuild_base: bool = typer.Option(False, "--rebuild-base", help="Rebuild the base model from scratch (random "
                                      "init -> alignment -> instruction mix; about 30 min on 2 cores) instead of "
                                      "the shipped checkpoint."),
    base: Optional[Path] = typer.Option(None, "--base", help="Use this base model directory instead of the shipped "
                                        "one (e.g. one made by --rebuild-base)."),
    control: bool = typer.Option(False, "--control/--no-control", help="Also train the control: the base "
                                 "fine-tuned on template-written visual long thoughts (a perfect teacher standing in "
                                 "for the paper's QVQ). Adds about 2 min."),
    threads: int = typer.Option(2, "--threads", help="torch threads for training (generation always uses 1, "
                                "which is faster for tiny decode steps)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars."),
) -> None:
    """Run the toy reproduction of Virgo's central experiment (paper sections 2-3, Table 2).

    A tiny Qwen2-VL (the stand-in for Qwen2-VL-Instruct) that reads synthetic bar charts and answers in one shot
    is fine-tuned on TEXT-ONLY long-thought data (Virgo-T), then evaluated on held-out VISUAL questions; Virgo-T
    then self-distils visual long thoughts (the grader keeps the shortest correct rollout) to train Virgo-SD and
    Virgo-T+SD. Same stages as a real run: make-tiny-model -> train -> generate -> distill -> grade -> eval ->
    report. Prints the table and writes results.json, report.md and plots into --out.
    """
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from rich.console import Console

    from virgo.demo import base as base_mod
    from virgo.demo.experiment import run
    from virgo.demo.report import print_table, write_report

    console = Console()

    def say(msg: str) -> None:
        console.print(f"[bold cyan]demo[/] {msg}")

    out.mkdir(parents=True, exist_ok=True)
    if rebuild_base:
        say("rebuilding the base model from scratch")
        base_dir = base_mod.rebuild(out / "base-build", threads=threads, say=say)
    elif base is not None:
        base_dir = base
    else:
        try:
            base_dir = base_mod.verify()
        except (FileNotFoundError, ValueError) as e:
            raise typer.BadParameter(str(e), param_hint="the shipped base checkpoint") from None
        say(f"base model: {base_dir} (sha256 verified)")
    seeds = list(dict.fromkeys(seed))
    runs = {}
    for k in seeds:
        folder = out if len(seeds) == 1 else out / f"seed-{k}"
        if len(seeds) > 1:
            say(f"seed {k} -> {folder}")
        runs[k] = run(folder, Path(base_dir), seed=k, quick=quick, threads=threads, control=control,
                      progress=progress, say=say)
        report = write_report(runs[k], folder)
        print_table(runs[k])
        say(f"results: {folder / 'results.json'}; report: {report}")
    if len(seeds) > 1:
        from virgo.demo.summary import summarize, write_summary

        path = write_summary(summarize(runs), out)
        console.print(path.read_text())
        say(f"summary over seeds {seeds}: {path}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)
