"""`virgo distill`: teacher rollouts on visual questions, graded, banded and filtered into long-thought data."""

from __future__ import annotations

from pathlib import Path

import typer

from virgo.infer.cli import CHAT_TEMPLATE_HELP
from virgo.prompts import DEFAULT_CHAT_TEMPLATE


def distill_cmd(
    problems: Path = typer.Option(..., "--problems", "-p", exists=True, dir_okay=False,
                                  help="Problems JSONL (virgo Problem records: id, question, answer, images)."),
    out: Path = typer.Option(..., "--out", "-o", dir_okay=False,
                             help="Rollouts JSONL (append-only; rerunning resumes). Grades, dataset and stats are "
                                  "written beside it: OUT.grades.jsonl, OUT.dataset.jsonl, OUT.dataset.stats.json."),
    teacher: str = typer.Option(None, "--teacher", "-t",
                                help="Teacher: an http(s) URL of an OpenAI-compatible server (vllm serve, virgo "
                                     "serve, a hosted API) or a local model directory (e.g. a `virgo train` output)."),
    teacher_model: str = typer.Option(None, "--teacher-model",
                                      help="Model name to request from a URL teacher (e.g. Qwen/QVQ-72B-Preview)."),
    api_key: str = typer.Option(None, "--api-key", envvar="VIRGO_API_KEY", show_envvar=True,
                                help="API key for URL teachers (prefer the environment variable)."),
    n: int = typer.Option(5, "--n", min=1, help="Rollouts per problem (the paper's bands are defined for 5)."),
    temperature: float = typer.Option(1.0, "--temperature", min=0.0, help="Sampling temperature of the rollouts."),
    top_p: float = typer.Option(0.95, "--top-p", min=0.0, max=1.0, help="Nucleus sampling of the rollouts."),
    max_new_tokens: int = typer.Option(8192, "--max-new-tokens", min=1, help="Token limit per rollout."),
    repetition_penalty: float = typer.Option(1.05, "--repetition-penalty", help="As Virgo's inference (1.05)."),
    prompt: str = typer.Option("think-boxed", "--prompt",
                               help="Prompt prefix by name (plain, think-boxed, still2) or path to a .txt file."),
    system: str = typer.Option(None, "--system", help="System prompt (default: the chat template's)."),
    chat_template: str = typer.Option(DEFAULT_CHAT_TEMPLATE, "--chat-template", help=CHAT_TEMPLATE_HELP),
    seed: int = typer.Option(0, "--seed", help="Seed of sampling, of the random band and of the random policy."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Requests in flight for URL teachers."),
    timeout: float = typer.Option(None, "--timeout", min=0.1,
                                  help="Seconds per request to a URL teacher or base model before it is retried "
                                       "(default: the OpenAI backend's, 600)."),
    max_retries: int = typer.Option(None, "--max-retries", min=0,
                                    help="Retries per request to a URL teacher or base model, with backoff "
                                         "(default: the OpenAI backend's, 5)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Batch size for a local teacher."),
    dtype: str = typer.Option("float32", "--dtype", help="dtype of a local teacher (float32, bfloat16, float16)."),
    limit: int = typer.Option(None, "--limit", min=1, help="Use only the first N problems."),
    filter_only: bool = typer.Option(False, "--filter-only",
                                     help="Do not generate: grade and filter the rollouts already in --out."),
    rollouts_only: bool = typer.Option(False, "--rollouts-only", help="Generate rollouts only; no grading/dataset."),
    dataset: Path = typer.Option(None, "--dataset", dir_okay=False,
                                 help="Where to write the long-thought dataset (default OUT.dataset.jsonl)."),
    stats: Path = typer.Option(None, "--stats", dir_okay=False,
                               help="Where to write the stats JSON (default beside the dataset, .stats.json)."),
    profile: str = typer.Option("default", "--profile",
                                help="Grading profile: default, mathvision, mathverse, olympiadbench, mmmu."),
    base_greedy: Path = typer.Option(None, "--base-greedy", exists=True, dir_okay=False,
                                     help="The base model's greedy answers (Generation or Grade JSONL): problems it "
                                          "solves are 'easy' and dropped (except by --band random)."),
    base_model: str = typer.Option(None, "--base-model",
                                   help="Generate the base model's greedy answers with this model (URL or path)."),
    base_model_name: str = typer.Option(None, "--base-model-name", help="Model name to request from a URL base."),
    band: str = typer.Option("solved", "--band",
                             help="Which problems to keep: solved (>=1 correct rollout, the paper's main rule), "
                                  "medium (4-5 of 5 correct), hard (2-3), unused (0-1), easy, a list like "
                                  "medium,hard, random (random problems regardless of the base model), or all."),
    random_size: int = typer.Option(None, "--random-size", min=0,
                                    help="Problems drawn by --band random (default: the medium band's size)."),
    medium_min: int = typer.Option(4, "--medium-min", help="Correct rollouts out of --band-per for medium."),
    hard_min: int = typer.Option(2, "--hard-min", help="Correct rollouts out of --band-per for hard."),
    band_per: int = typer.Option(5, "--band-per", help="Rollout count the thresholds refer to (scaled to --n)."),
    policy: str = typer.Option("shortest", "--policy",
                               help="Per problem keep the shortest correct rollout, a random one, or all."),
    require_complete: bool = typer.Option(True, "--require-complete/--allow-unclosed",
                                          help="Require closed thought and solution sections."),
    length_unit: str = typer.Option("chars", "--length-unit", help="Unit of the thought length bounds: chars|tokens."),
    min_thought: int = typer.Option(None, "--min-thought", help="Shortest thought kept (in --length-unit)."),
    max_thought: int = typer.Option(None, "--max-thought", help="Longest thought kept (in --length-unit)."),
    max_ngram_repeat: float = typer.Option(0.3, "--max-ngram-repeat",
                                           help="Reject when more than this share of word n-grams are repeats."),
    ngram: int = typer.Option(10, "--ngram", min=1, help="n of the repetition n-grams (words)."),
    max_line_repeats: int = typer.Option(5, "--max-line-repeats",
                                         help="Reject when one line (>= 16 chars) occurs more often than this."),
    source: str = typer.Option(None, "--source", help="Teacher name recorded in each example (default: from rollouts)."),
    grade_timeout: float = typer.Option(2.0, "--grade-timeout", help="Per-rollout grading time limit (s)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Distil visual long-thought data from a slow-thinking teacher (paper section 2.2).

    Rolls the teacher out N times per problem (images included), grades every rollout against the gold answer, assigns difficulty bands (paper section 3.3), checks the format and writes a long-thought dataset for `virgo train` plus stats.

    Self-distillation: the teacher is a model trained by `virgo train` on text-only long thoughts, served by `virgo serve` or loaded from its directory.
    """
    from virgo.distill.bands import BandSpec, parse_selection
    from virgo.distill.dataset import POLICIES
    from virgo.distill.filters import FormatSpec
    from virgo.distill.pipeline import DistillPaths, distill
    from virgo.records import Problem, RecordError, read_records

    if filter_only and rollouts_only:
        raise typer.BadParameter("--filter-only and --rollouts-only exclude each other")
    if not filter_only and not teacher:
        raise typer.BadParameter("a teacher is required (or --filter-only)", param_hint="--teacher")
    if policy not in POLICIES:
        raise typer.BadParameter(f"choose from {', '.join(POLICIES)}", param_hint="--policy")
    if base_greedy and base_model:
        raise typer.BadParameter("give --base-greedy or --base-model, not both")
    try:
        parse_selection(band)
        band_spec = BandSpec(medium_min=medium_min, hard_min=hard_min, per=band_per)
        format_spec = FormatSpec(require_complete=require_complete, unit=length_unit, min_thought=min_thought,
                                 max_thought=max_thought, ngram=ngram,
                                 max_ngram_repeat=max_ngram_repeat if max_ngram_repeat < 1 else None,
                                 max_line_repeats=max_line_repeats if max_line_repeats > 0 else None)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    try:
        items = read_records(problems, Problem)
    except RecordError as e:
        raise typer.BadParameter(str(e), param_hint="--problems") from None
    if limit:
        items = items[:limit]

    from virgo.infer import GenerateConfig

    cfg = GenerateConfig(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                         repetition_penalty=repetition_penalty, n=n, seed=seed, prompt=prompt, system=system,
                         chat_template=chat_template,
                         batch_size=batch_size, dtype=dtype)
    paths = DistillPaths.beside(out, dataset=dataset, stats=stats)
    if rollouts_only:
        from virgo.distill.rollout import distill_rollouts

        summary = distill_rollouts(items, teacher, out, cfg, teacher_model=teacher_model, api_key=api_key,
                                   concurrency=concurrency, timeout=timeout, max_retries=max_retries,
                                   progress=progress)
        _print_rollout(summary)
        _exit_if_missing(summary, filter_only)
        return
    result = distill(items, teacher, out, cfg, paths=paths, rollouts=not filter_only,
                     base_greedy=base_greedy, base_model=base_model, base_model_name=base_model_name, band=band,
                     policy=policy, seed=seed, random_size=random_size, band_spec=band_spec,
                     format_spec=format_spec, profile=profile, grade_timeout=grade_timeout, source=source,
                     teacher_model=teacher_model, api_key=api_key, concurrency=concurrency, timeout=timeout,
                     max_retries=max_retries, progress=progress)
    _print_rollout(result["rollout"])
    _print_stats(result["stats"], result["paths"])
    _exit_if_missing(result["rollout"], filter_only)


def _exit_if_missing(s: dict, filter_only: bool) -> None:
    # Failed requests are not fatal mid-run (the others go on), so the end of the run is where an incomplete
    # rollout set must stop a script: its bands and dataset are partial until the run is resumed.
    if not s.get("missing"):
        return
    how = ("rerun without --filter-only (with --teacher) to generate them" if filter_only else
           "rerun the same command to resume (rollouts already in --out are kept; only the missing ones are "
           "requested)")
    typer.echo(f"error: {s['missing']} of {s['expected']} rollouts are missing; problems without all --n rollouts "
               f"are incomplete (not banded, not in the dataset). To finish, {how}.", err=True)
    raise typer.Exit(1)


def _print_rollout(s: dict) -> None:
    parts = [f"{s.get('records', 0)} rollouts"]
    if "expected" in s:
        parts.append(f"{s['missing']} missing of {s['expected']}")
    if s.get("wall_seconds") is not None:
        parts.append(f"{s['wall_seconds']:.1f} s")
    parts.append(f"{s.get('prompt_tokens', 0)} prompt + {s.get('completion_tokens', 0)} completion tokens")
    if s.get("completion_tokens_per_second"):
        parts.append(f"{s['completion_tokens_per_second']} tok/s")
    if s.get("finish_length"):
        parts.append(f"{s['finish_length']} hit the token limit")
    typer.echo("rollouts: " + ", ".join(parts))


def _print_stats(st: dict, paths) -> None:
    pr = st["pass_rate"]
    sel = st["selection"]
    typer.echo(f"graded: pass rate {pr['rollouts']} per rollout, {pr['problems_solved']} of problems solved; "
               f"correct per problem {pr['correct_per_problem']}")
    typer.echo("bands: " + ", ".join(f"{k} {v}" for k, v in st["bands"].items())
               + (f" (base model solved {st['base']['solved']})" if st["base"]["given"] else " (no base answers)"))
    if st["incomplete"]["problems"]:
        typer.echo(f"incomplete: {st['incomplete']['problems']} problems lack {st['incomplete']['rollouts_missing']} "
                   f"of their {st['n']} rollouts (not banded)")
    if st["rollouts_beyond_n"]:
        typer.echo(f"ignored: {st['rollouts_beyond_n']} rollouts with sample >= --n {st['n']} already in the file")
    typer.echo(f"format: {st['format']['passed']}/{st['format']['checked']} rollouts pass; rejects "
               f"{st['format']['rejects']}")
    typer.echo(f"dataset: {sel['examples']} examples from {sel['problems']} problems (band {sel['band']}, "
               f"policy {sel['policy']}); dropped {sel['dropped']} -> {paths.dataset}")
    typer.echo(f"stats: {paths.stats}")


def register(app: typer.Typer) -> None:
    app.command("distill", no_args_is_help=True)(distill_cmd)
