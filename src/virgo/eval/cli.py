"""``virgo eval`` and ``virgo report``, generated from `EvalConfig` / `ReportConfig` (virgo.eval.config).

    virgo eval --model M --benchmark mathvision --data-dir DIR --split test --limit 200 --seed 7 --out RUN
    virgo eval --rescore RUN                      # re-grade saved generations, no generation
    virgo eval ... --thinking-budget 256,512,1024 --out SWEEP     # a thinking-budget sweep (= --budgets ...)
    virgo report RUN [RUN ...] --out DIR          # markdown + JSON + PNG plots, runs side by side
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from virgo.config.cli import StageCommand, command, fail
from virgo.eval.config import BENCHMARK_PROMPT, EvalConfig, ReportConfig

_BUDGET_FLAG = re.compile(r"^--(?:generate\.)?thinking[-_]budget(?:=(.*))?$")
_BUDGET_OVERRIDE = re.compile(r"^(?:generate\.)?thinking[-_]budget=(.*,.*)$")


def _budget_list(text: str) -> list[str] | None:
    items = [t.strip() for t in text.strip().strip("[]").split(",")]
    return items if len(items) > 1 else None


def sweep_args(args: list[str]) -> list[str]:
    """``--thinking-budget 256,512,1024`` (a list) -> ``--budgets 256 --budgets 512 --budgets 1024``; a single
    value keeps its meaning (one cap)."""
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        m, o = _BUDGET_FLAG.match(a), _BUDGET_OVERRIDE.match(a)
        value = (m.group(1) if m and m.group(1) is not None else args[i + 1] if m and i + 1 < len(args) else
                 o.group(1) if o else None)
        items = _budget_list(value) if value is not None else None
        if items is None:
            out.append(a)
            i += 1
            continue
        for item in items:
            out += ["--budgets", item]
        i += 2 if m and m.group(1) is None else 1
    return out


class EvalCommand(StageCommand):
    """`virgo eval`: the generated command, plus the list form of ``--thinking-budget`` (a sweep)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, sweep_args(list(args)))


def _parse_options(items: list[str]) -> dict[str, Any]:
    from virgo.config.values import yaml_load

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--option expects key=value, got {item!r}")
        out[key.strip()] = yaml_load(value)  # YAML scalars/lists: true, 3, [a, b]
    return out


def _list_benchmarks() -> None:
    from virgo.eval.registry import get_benchmark, list_benchmarks

    for name in list_benchmarks():
        spec = get_benchmark(name)
        click.echo(f"{name:14s} splits: {', '.join(spec.splits)} (default {spec.default_split}); "
                   f"profile {spec.profile}; source: {spec.source}")


def _caption_source(cfg: EvalConfig):
    from virgo.eval.caption import CaptionSource

    c, engine = cfg.caption, cfg.engine
    # The captioner runs where the model does unless told otherwise; a caption URL implies a server.
    backend = c.caption_backend or ("openai" if c.caption_base_url else engine.backend)
    return CaptionSource(file=c.captions, model=c.caption_model, backend=backend,
                         base_url=c.caption_base_url or (engine.base_url if backend == engine.backend else None),
                         max_new_tokens=c.caption_max_new_tokens)


def run_eval(cfg: EvalConfig, list_: bool = False) -> None:
    if list_:
        _list_benchmarks()
        return
    try:
        judge = cfg.grade.judge()
        if cfg.rescore is not None:
            from virgo.eval.run import rescore

            metrics = rescore(cfg.rescore, grade=cfg.grade, judge=judge, show_k=cfg.k or None)
            _summary(Path(cfg.rescore), metrics)
            return
        missing = cfg.missing()
        if missing:
            fail(f"missing {', '.join(missing)} (or use --rescore RUN)")
        if cfg.engine.backend != "openai":
            from virgo.modeling.source import check_model_exists

            check_model_exists(cfg.model)
        _evaluate(cfg, judge)
    except (FileNotFoundError, ValueError, KeyError) as e:
        fail(str(e).strip("'\""))


def _evaluate(cfg: EvalConfig, judge: Any) -> None:
    from virgo.eval.registry import filter_problems, get_benchmark, parse_where, select

    spec = get_benchmark(cfg.benchmark)
    options = _parse_options(cfg.option)
    loaded = spec.load_full(cfg.data_dir, cfg.split, **options)
    split = cfg.split or spec.default_split
    problems = select(filter_problems(loaded.problems, parse_where(cfg.where)), cfg.limit, cfg.generate.seed)
    if not problems:
        raise ValueError("no problems left to evaluate after --where/--limit")
    gen = cfg.generate
    if gen.prompt == BENCHMARK_PROMPT:
        gen = gen.replace(prompt=spec.prompt)
    engine = cfg.engine.kwargs()  # backend, base_url, and the HTTP client's api_key, concurrency, timeout, ...
    backend, base_url = engine.pop("backend"), engine.pop("base_url")
    api_key, concurrency = engine.pop("api_key", None), engine.pop("concurrency", 4)
    ablation = None
    if cfg.caption.active:
        from virgo.eval.caption import apply_captions

        source = _caption_source(cfg)
        problems = apply_captions(problems, source.load(problems, cfg.out, gen, api_key=api_key,
                                                        concurrency=concurrency))
        ablation = source.ablation()
    kw = {"split": split, "breakdowns": spec.breakdowns, "backend": backend, "base_url": base_url,
          "api_key": api_key, "concurrency": concurrency, "engine": engine, "grade": cfg.grade, "judge": judge,
          "data_files": loaded.files, "paper_column": spec.paper_column,
          "max_answer_chars": cfg.grade.max_answer_chars, "official": spec.metrics, "show_k": cfg.k or None,
          "selection": {"limit": cfg.limit, "seed": cfg.generate.seed, "where": cfg.where, "options": options,
                        "total_items": len(loaded.problems)}}
    profile = cfg.grade.profile or spec.profile
    click.echo(f"{spec.name} [{split}]: {len(problems)} of {len(loaded.problems)} items -> {cfg.out}")
    if cfg.budgets:
        from virgo.eval.sweep import run_sweep

        rows = run_sweep(cfg.model, problems, cfg.out, gen.replace(), cfg.budgets, label=cfg.label,
                         benchmark=spec.name, log=click.echo, profile=profile, **kw)
        for r in rows:
            acc = "—" if r["accuracy"] is None else f"{100 * r['accuracy']:.1f}%"
            click.echo(f"budget {r['budget']}: accuracy {acc}, thinking tokens used "
                       f"{r['mean_thought_tokens'] or 0:.0f}, reused {r['reused']}")
        click.echo(f"report: {Path(cfg.out) / 'report.md'}")
        return
    from virgo.eval.run import evaluate

    metrics = evaluate(cfg.model, problems, cfg.out, gen, profile, benchmark=spec.name, label=cfg.label,
                       ablation=ablation, **kw)
    _summary(Path(cfg.out), metrics)


def _summary(run_dir: Path, metrics: dict) -> None:
    acc = metrics["accuracy"]
    if acc is None:
        click.echo("no generations graded")
    else:
        verdicts = ", ".join(f"{k} {c}" for k, c in metrics["verdicts"].items())
        click.echo(f"accuracy {100 * acc:.1f}% ± {100 * metrics['stderr']:.1f} (n={metrics['n']}); {verdicts}")
    failures = metrics.get("generation_failures")
    click.echo(f"report: {run_dir / 'report.md'}")
    if failures:
        fail(f"{failures['failed']} generation(s) failed, first: {failures['first_error']}. The others are scored; "
             "rerun the same command to retry only the failed ones.", code=1)


def run_report(cfg: ReportConfig) -> None:
    from virgo.eval.report import render_report

    labels = {}
    for item in cfg.label:
        run, sep, name = item.partition("=")
        if not sep:
            fail(f"--label expects RUN=NAME, got {item!r}")
        labels[run] = name
        labels[Path(run).name] = name
    try:
        md = render_report(list(cfg.runs), cfg.out, labels, show_k=cfg.k or None)
    except (FileNotFoundError, ValueError) as e:
        fail(str(e))
    click.echo(f"report: {md}")


EVAL_HELP = """Evaluate a model on a benchmark: generate (resumable) -> grade -> metrics -> report.

The run folder holds the problems, the generations (append-only: rerunning resumes), the grades, metrics.json
(accuracy, breakdowns, thought analytics, pass@k / maj@k / mean@k with n samples, the benchmark's official metrics)
and report.md. `--thinking-budget 256,512,1024` (a list) runs a thinking-budget sweep instead: one run per budget
and the accuracy-against-thinking-tokens curve. `--rescore RUN` re-grades saved generations."""

eval_ = EvalCommand("eval", EvalConfig, run_eval, recipes=None, help=EVAL_HELP, extra=[
    click.Option(["list_", "--list"], is_flag=True, help="List the packaged benchmarks and exit.")])
eval_.extra_names = ("list_",)  # type: ignore[attr-defined]

report = command("report", ReportConfig, run_report, help="""Markdown + JSON + PNG report for eval runs, side by side.

Accuracy, breakdowns, verdicts (truncation kept apart), thought analytics, pass@k / maj@k / mean@k, runs across
seeds, each benchmark's official metrics, the paper's Table 2 next to ours, the thinking-budget curve of a sweep
folder, and each run's reproducibility manifest.""")
