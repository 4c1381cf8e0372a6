"""``virgo eval`` and ``virgo report``.

    virgo eval --model M --benchmark mathvision --data-dir DIR --split test --limit 200 --seed 7 --out RUN
    virgo eval --rescore RUN                # re-grade saved generations, no generation
    virgo report RUN [RUN ...] --out DIR    # markdown + JSON + PNG plots, runs side by side
"""

from __future__ import annotations

from pathlib import Path

import typer

from virgo.infer.cli import CHAT_TEMPLATE_HELP

_BENCH_HELP = "Benchmark name (mathvision, mathverse, olympiadbench, mmmu) or a path to a YAML spec."


def _parse_options(items: list[str] | None) -> dict:
    import yaml

    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--option expects key=value, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)  # YAML scalars/lists: true, 3, [a, b]
    return out


def _fail(e: Exception) -> None:
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(2)


def eval_cmd(
    model: str = typer.Option(None, "--model", help="Model directory (transformers backend) or served model name "
                                                    "(openai backend)."),
    benchmark: str = typer.Option(None, "--benchmark", help=_BENCH_HELP),
    data_dir: Path = typer.Option(None, "--data-dir", help="Folder holding the benchmark's official files."),
    split: str = typer.Option(None, "--split", help="Split (default: the benchmark's, e.g. test / testmini / "
                                                    "validation)."),
    limit: int = typer.Option(None, "--limit", help="Evaluate a random subset of N items (kept in file order)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the --limit subset and of sampling."),
    out: Path = typer.Option(None, "--out", help="Run folder; rerunning into the same folder resumes."),
    rescore: Path = typer.Option(None, "--rescore", help="Re-grade the generations of this run folder; no "
                                                         "generation."),
    profile: str = typer.Option(None, "--profile", help="Grading profile (default: the benchmark's)."),
    max_answer_chars: int = typer.Option(None, "--max-answer-chars", min=1,
                                         help="Grade extracted answers longer than this wrong (OlympiadBench's "
                                              "official rule uses 100), as `virgo grade --max-answer-chars`. Off "
                                              "by default; kept in the run for --rescore."),
    where: list[str] = typer.Option(None, "--where", help="Keep items whose meta field matches, e.g. "
                                                          "--where language=en --where subject=maths,physics."),
    option: list[str] = typer.Option(None, "--option", help="Loader option key=value, e.g. include_text_only=true."),
    label: str = typer.Option(None, "--label", help="Name of the model in reports (default: model folder name)."),
    backend: str = typer.Option("transformers", "--backend", help="transformers (local) or openai (a server)."),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible server URL (openai backend)."),
    api_key: str = typer.Option(None, "--api-key", envvar="VIRGO_API_KEY", help="API key for --base-url."),
    concurrency: int = typer.Option(4, "--concurrency", help="Parallel requests (openai backend)."),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", help="Token limit per response (paper: 8192)."),
    temperature: float = typer.Option(None, "--temperature", help="Sampling temperature (paper: 0, greedy)."),
    top_p: float = typer.Option(None, "--top-p", help="Nucleus sampling (paper: 1.0)."),
    repetition_penalty: float = typer.Option(None, "--repetition-penalty", help="Paper: 1.05."),
    n: int = typer.Option(None, "--n", help="Samples per item (accuracy averages over them)."),
    prompt: str = typer.Option(None, "--prompt", help="Prompt prefix name or file (default: the benchmark's, "
                                                      "think-boxed)."),
    system: str = typer.Option(None, "--system", help="System prompt (default: the chat template's)."),
    chat_template: str = typer.Option(None, "--chat-template", help=CHAT_TEMPLATE_HELP),
    thinking_budget: int = typer.Option(None, "--thinking-budget", help="Cap on thought tokens."),
    batch_size: int = typer.Option(None, "--batch-size", help="Generation batch size (transformers backend)."),
    dtype: str = typer.Option(None, "--dtype", help="Model dtype (float32, bfloat16, ...)."),
    captions: Path = typer.Option(None, "--captions", help="Ablation: replace every image by its caption from this "
                                                           "JSONL file."),
    caption_model: str = typer.Option(None, "--caption-model", help="Ablation: caption every image with this model "
                                                                    "first, then evaluate on the captions."),
    caption_backend: str = typer.Option(None, "--caption-backend", help="Backend of --caption-model: transformers "
                                                                        "or openai (default: openai with "
                                                                        "--caption-base-url, else --backend)."),
    caption_max_new_tokens: int = typer.Option(512, "--caption-max-new-tokens", min=1,
                                               help="Token limit per caption (--caption-model)."),
    caption_base_url: str = typer.Option(None, "--caption-base-url", help="OpenAI-compatible server that writes the "
                                                                          "captions (default: --base-url when the "
                                                                          "caption backend is --backend)."),
    workers: int = typer.Option(None, "--workers", help="Grading processes (default: CPU count)."),
    judge_url: str = typer.Option(None, "--judge-url", help="OpenAI-compatible LLM judge for answers the rules leave "
                                                            "undecided (as the paper's MathVerse/MathVision scoring)."),
    judge_model: str = typer.Option(None, "--judge-model", help="Judge model name (default: the server's first)."),
    list_: bool = typer.Option(False, "--list", help="List the packaged benchmarks and exit."),
) -> None:
    """Evaluate a model on a benchmark: generate (resumable) -> grade -> metrics -> report."""
    from virgo.eval.registry import get_benchmark, list_benchmarks

    if list_:
        for name in list_benchmarks():
            spec = get_benchmark(name)
            typer.echo(f"{name:14s} splits: {', '.join(spec.splits)} (default {spec.default_split}); "
                       f"profile {spec.profile}; source: {spec.source}")
        return
    try:
        judge = None
        if judge_url is not None or judge_model is not None:
            from virgo.grade import Judge

            judge = Judge(judge_url, model=judge_model)
        if rescore is not None:
            from virgo.eval.run import rescore as do_rescore

            metrics = do_rescore(rescore, profile=profile, max_answer_chars=max_answer_chars, workers=workers,
                                 judge=judge)
            _summary(rescore, metrics)
            return
        missing = [f for f, v in (("--model", model), ("--benchmark", benchmark), ("--data-dir", data_dir),
                                  ("--out", out)) if v is None]
        if missing:
            raise typer.BadParameter(f"missing {', '.join(missing)} (or use --rescore RUN)")
        if captions is not None and caption_model is not None:
            raise typer.BadParameter("give --captions or --caption-model, not both")
        if caption_model is None and (caption_backend is not None or caption_base_url is not None):
            raise typer.BadParameter("--caption-backend/--caption-base-url go with --caption-model")
        caption = None
        if captions is not None or caption_model is not None:
            from virgo.eval.caption import CaptionSource

            # The captioner runs where the model does unless told otherwise; a caption URL implies a server.
            cap_backend = caption_backend or ("openai" if caption_base_url else backend)
            caption = CaptionSource(file=captions, model=caption_model, backend=cap_backend,
                                    base_url=caption_base_url or (base_url if cap_backend == backend else None),
                                    max_new_tokens=caption_max_new_tokens)
        _evaluate(model=model, benchmark=benchmark, data_dir=data_dir, split=split, limit=limit, seed=seed, out=out,
                  profile=profile, max_answer_chars=max_answer_chars, where=where, option=option, label=label,
                  backend=backend, base_url=base_url, api_key=api_key, concurrency=concurrency, caption=caption,
                  workers=workers, judge=judge, overrides=dict(max_new_tokens=max_new_tokens, temperature=temperature,
                                                               top_p=top_p, repetition_penalty=repetition_penalty,
                                                               n=n, prompt=prompt, system=system,
                                                               chat_template=chat_template,
                                                               thinking_budget=thinking_budget,
                                                               batch_size=batch_size, dtype=dtype, seed=seed))
    except (FileNotFoundError, ValueError, KeyError) as e:
        _fail(e)


def _evaluate(*, model, benchmark, data_dir, split, limit, seed, out, profile, max_answer_chars, where, option, label,
              backend, base_url, api_key, concurrency, caption, workers, judge, overrides) -> None:
    import dataclasses

    from virgo.eval.registry import filter_problems, get_benchmark, parse_where, select
    from virgo.eval.run import evaluate
    from virgo.infer import GenerateConfig

    spec = get_benchmark(benchmark)
    options = _parse_options(option)
    loaded = spec.load_full(data_dir, split, **options)
    problems = select(filter_problems(loaded.problems, parse_where(where)), limit, seed)
    if not problems:
        raise ValueError("no problems left to evaluate after --where/--limit")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    overrides.setdefault("prompt", spec.prompt)
    cfg = dataclasses.replace(GenerateConfig(), **overrides)
    ablation = None
    if caption is not None:
        from virgo.eval.caption import apply_captions

        problems = apply_captions(problems, caption.load(problems, out, cfg, api_key=api_key, concurrency=concurrency))
        ablation = caption.ablation()
    typer.echo(f"{spec.name} [{split or spec.default_split}]: {len(problems)} of {len(loaded.problems)} items -> {out}")
    metrics = evaluate(model, problems, out, cfg, profile or spec.profile, benchmark=spec.name,
                       split=split or spec.default_split, breakdowns=spec.breakdowns, backend=backend,
                       base_url=base_url, api_key=api_key, concurrency=concurrency, workers=workers, judge=judge,
                       data_files=loaded.files, label=label, paper_column=spec.paper_column, ablation=ablation,
                       max_answer_chars=max_answer_chars,
                       selection={"limit": limit, "seed": seed, "where": where or [], "options": options,
                                  "total_items": len(loaded.problems)})
    _summary(out, metrics)


def _summary(run_dir: Path, metrics: dict) -> None:
    acc = metrics["accuracy"]
    if acc is None:
        typer.echo("no generations graded")
    else:
        verdicts = ", ".join(f"{k} {c}" for k, c in metrics["verdicts"].items())
        typer.echo(f"accuracy {100 * acc:.1f}% ± {100 * metrics['stderr']:.1f} (n={metrics['n']}); {verdicts}")
    typer.echo(f"report: {Path(run_dir) / 'report.md'}")


def report_cmd(
    runs: list[Path] = typer.Argument(..., help="One or more `virgo eval` run folders."),
    out: Path = typer.Option(None, "--out", help="Output folder (default: the run folder for one run, "
                                                 "./virgo-report for several)."),
    label: list[str] = typer.Option(None, "--label", help="RUN=NAME: the name of a run in tables (repeatable)."),
) -> None:
    """Markdown + JSON + PNG report: accuracy, breakdowns, verdicts, thought analytics, paper's Table 2."""
    from virgo.eval.report import render_report

    labels = {}
    for item in label or []:
        run, sep, name = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--label expects RUN=NAME, got {item!r}")
        labels[run] = name
        labels[Path(run).name] = name
    try:
        md = render_report(list(runs), out, labels)
    except (FileNotFoundError, ValueError) as e:
        _fail(e)
    typer.echo(f"report: {md}")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)
    app.command("report")(report_cmd)
