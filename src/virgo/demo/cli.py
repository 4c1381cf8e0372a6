"""`virgo demo`: the paper's central experiment in miniature on a CPU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from virgo.config.cli import command, fail
from virgo.config.fields import opt


@dataclass
class DemoConfig:
    """`virgo demo`: which seeds and variants, where, and how many threads."""

    out: str = opt("runs/demo", short="-o", path=True, help="Run folder: data, models, evaluations, results.json, "
                   "report.md, plots and view.html. Rerunning with the same folder resumes.")
    seed: list[int] = opt([0], help="Seed of the Virgo-T/SD training and the self-distillation sampling (the base "
                          "model and the held-out questions stay fixed). Repeat it (--seed 0 --seed 1 --seed 2) to "
                          "run several seeds into OUT/seed-S and write OUT/summary.md: per-seed numbers and on how "
                          "many seeds each finding holds.")
    quick: bool = opt(False, help="A few training steps and small question sets: checks that every stage runs "
                      "(about 30 s on 2 cores); the numbers mean nothing.")
    rebuild_base: bool = opt(False, help="Rebuild the base model from scratch (random init -> alignment -> "
                             "instruction mix; about 30 min on 2 cores) instead of the shipped checkpoint.")
    base: str | None = opt(None, path=True, help="Use this base model directory instead of the shipped one (e.g. one "
                           "made by --rebuild-base).")
    control: bool = opt(False, help="Also train the control: the base fine-tuned on template-written visual long "
                        "thoughts (a perfect teacher standing in for the paper's QVQ). Adds about 1 min.")
    threads: int = opt(2, ge=1, help="CPU cores (worker processes) to use: Virgo-T trains on 2 of them, every "
                       "other stage on one, side by side (Virgo-SD beside Virgo-T∪SD, the self-distillation in "
                       "halves, the evaluations). Each stage's thread count is fixed, as it changes floating-point "
                       "rounding and so the trained models.")
    rl: bool = opt(False, help="Also train Virgo-T+RL: GRPO from Virgo-T on the visual training problems with the "
                   "grader's verdict as the reward (`virgo rl`, recipe src/virgo/demo/recipes/virgo-t+rl.yaml), "
                   "evaluated like the other variants, with its claim checked (>= 5 points over Virgo-T on visual "
                   "hard).")
    recipes: str | None = opt(None, path=True, help="A folder of stage recipes (virgo-t.yaml, virgo-sd.yaml, "
                              "virgo-t+sd.yaml, oracle-visual.yaml) to train with instead of the shipped ones in "
                              "src/virgo/demo/recipes: how recipe changes are compared (src/virgo/demo/README.md).")
    progress: bool | None = opt(None, help="Progress bars (null = only on a terminal and with --threads 1; side by "
                                "side stages print one prefixed line per logged training step instead).")


def demo_cmd(cfg: DemoConfig) -> None:
    import os
    import sys

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from rich.console import Console

    from virgo.demo import base as base_mod
    from virgo.demo.experiment import run
    from virgo.demo.report import print_table, write_report

    console = Console()

    def say(msg: str) -> None:
        console.print(f"[bold cyan]demo[/] {msg}", soft_wrap=True)

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    threads, quick, control = cfg.threads, cfg.quick, cfg.control
    progress = cfg.progress if cfg.progress is not None else (threads == 1 and sys.stderr.isatty())
    if cfg.rebuild_base:
        say("rebuilding the base model from scratch")
        base_dir = base_mod.rebuild(out / "base-build", threads=threads, say=say)  # one process, all threads
    elif cfg.base is not None:
        base_dir = Path(cfg.base)
    else:
        try:
            base_dir = base_mod.verify()
        except (FileNotFoundError, ValueError) as e:
            fail(f"the shipped base checkpoint: {e}")
        say(f"base model: {base_dir} (sha256 verified)")
    seeds = list(dict.fromkeys(cfg.seed))
    runs = {}
    for k in seeds:
        folder = out if len(seeds) == 1 else out / f"seed-{k}"
        if len(seeds) > 1:
            say(f"seed {k} -> {folder}")
        runs[k] = run(folder, Path(base_dir), seed=k, quick=quick, workers=threads, control=control, rl=cfg.rl,
                      progress=progress, recipes=Path(cfg.recipes) if cfg.recipes else None, say=say)
        report = write_report(runs[k], folder)
        print_table(runs[k])
        say(f"results: {folder / 'results.json'}; report: {report}; thoughts: {_view(folder)}")
    if len(seeds) > 1:
        from virgo.demo.summary import summarize, write_summary

        path = write_summary(summarize(runs), out)
        console.print(path.read_text())
        say(f"summary over seeds {seeds}: {path}")


def _view(folder: Path) -> str:
    """The page of base vs Virgo-T thoughts next to the report (`virgo view`); a failure is reported, not fatal."""
    from virgo.view import write_view

    try:
        return str(write_view(folder))
    except (OSError, ValueError) as e:
        return f"(view.html not written: {e})"


demo = command("demo", DemoConfig, demo_cmd, help="""Run the toy reproduction of Virgo's central experiment.

A tiny Qwen2-VL (the stand-in for Qwen2-VL-Instruct) that reads synthetic bar charts and answers in one shot is
fine-tuned on TEXT-ONLY long-thought data (Virgo-T), then evaluated on held-out VISUAL questions; Virgo-T then
self-distils visual long thoughts (the grader keeps the shortest correct rollout) to train Virgo-SD and Virgo-T∪SD.
Same stages as a real run: make-tiny-model -> train -> generate -> distill -> grade -> eval -> report. Prints the
table and writes results.json, report.md, plots and view.html (browse the thoughts) into --out. The training stages
are `virgo train` recipes in src/virgo/demo/recipes/.""")
