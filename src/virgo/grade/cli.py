"""`virgo grade`: grade generations against gold answers; append-only output, resumable, with a summary."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def _warn(msg: str) -> None:
    typer.echo(f"warning: {msg}", err=True)


def grade_cmd(
    problems: Path = typer.Option(..., "--problems", "-p", exists=True, dir_okay=False,
                                  help="Problems JSONL (virgo Problem records): id, question, answer (the gold), "
                                       "choices, answer_type, meta (tolerance/error, unit, is_multiple_answer, ...)."),
    generations: Path = typer.Option(..., "--generations", "-g", exists=True, dir_okay=False,
                                     help="Generations JSONL (virgo Generation records): id, sample, text, "
                                          "finish_reason. Every record is graded against the problem with its id."),
    out: Path = typer.Option(..., "--out", "-o", dir_okay=False,
                             help="Grades JSONL, append-only: rerunning skips the (id, sample) pairs already in it."),
    benchmark: str = typer.Option("default", "--benchmark", "-b",
                                  help="Grading profile by benchmark: default, mathvision, mathverse, olympiadbench, "
                                       "mmmu (a benchmark name starting with one of these selects it)."),
    max_answer_chars: int = typer.Option(None, "--max-answer-chars", min=1,
                                         help="Count extracted answers longer than this as wrong (OlympiadBench's "
                                              "official rule uses 100). Off by default."),
    unclosed_solution: str = typer.Option(None, "--unclosed-solution",
                                          help="A solution section that never closed: 'truncated' (default) or "
                                               "'grade' it when the model stopped on its own with a final answer."),
    workers: int = typer.Option(None, "--workers", "-w", min=0,
                                help="Grading processes (default: all cores; 0 = in this process, no time limit)."),
    timeout: float = typer.Option(2.0, "--timeout", min=0.1,
                                  help="Seconds per response (CPU time, or wall time its worker runs or blocks); a "
                                       "response over it is graded wrong (timeout) and its worker replaced."),
    judge_url: str = typer.Option(None, "--judge-url", envvar="VIRGO_JUDGE_URL",
                                  help="OpenAI-compatible endpoint of an LLM judge for what the rules leave "
                                       "undecided (no answer found, or answers the rules cannot compare). The key "
                                       "comes from $VIRGO_JUDGE_API_KEY or $OPENAI_API_KEY."),
    judge_model: str = typer.Option(None, "--judge-model", envvar="VIRGO_JUDGE_MODEL",
                                    help="Judge model name (default: the first model the endpoint lists)."),
    judge_cache: Path = typer.Option(None, "--judge-cache", dir_okay=False,
                                     help="Judge reply cache (JSONL; default $VIRGO_CACHE/judge-cache.jsonl)."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Regrade everything: replace --out instead of resuming."),
    summary_json: Path = typer.Option(None, "--summary-json", dir_okay=False,
                                      help="Also write the summary (accuracy, verdicts, graded_by) as JSON here."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Grade generations against gold answers and print a summary table.

    Each response's thought is stripped and its final answer extracted (boxed, "the answer is", option letters).

    The answer is compared with the gold one (Math-Verify, tolerances, units, multiple answers, option texts).

    Verdicts: correct, wrong, no_answer, truncated. Each grade names its extraction rule and deciding rule.

    Every response is graded in a worker process under a hard time limit; rerunning resumes.
    """
    from rich.console import Console

    from virgo.grade import Judge, get_profile, profile_for_benchmark, render_summary, summarize
    from virgo.grade.batch import iter_grades
    from virgo.grade.profiles import excluded_reason
    from virgo.records import AppendWriter, Generation, Grade, Problem, done_keys, read_records

    try:
        overrides = {}
        if max_answer_chars is not None:
            overrides["max_answer_chars"] = max_answer_chars
        if unclosed_solution is not None:
            overrides["unclosed_solution"] = unclosed_solution
        profile = get_profile(profile_for_benchmark(benchmark), **overrides)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None

    # Read inputs: bad lines are reported with file, line and field; the good records are all graded. Model
    # output with bytes that are not UTF-8 is graded too (decoded with U+FFFD; its grade says so): dropping it
    # would shrink n and inflate the accuracy.
    probs = read_records(problems, Problem, strict=False, resolve_images=False)
    gens = read_records(generations, Generation, strict=False, resolve_images=False, replace_invalid_utf8=True)
    for err in probs.errors + gens.errors:
        _warn(f"skipped a bad record: {err}")
    replaced_lines = {line for line, _ in gens.replaced}
    replaced = {g.key for g, line in zip(gens.records, gens.lines) if line in replaced_lines}
    for line, why in gens.replaced:
        _warn(f"{generations}:{line}: {why}: decoded with U+FFFD replacement characters and graded "
              f"(its grade has invalid_utf8=true)")
    by_id = {p.id: p for p in probs.records}
    if not by_id:
        typer.echo(f"error: no valid problems in {problems}", err=True)
        raise typer.Exit(2)

    unknown = sorted({g.id for g in gens.records if g.id not in by_id})
    if unknown:
        _warn(f"{len(unknown)} generation ids have no problem in {problems} and are not graded "
              f"(e.g. {', '.join(unknown[:5])})")
    excluded = {pid for pid, p in by_id.items() if excluded_reason(p, profile)}
    if excluded:
        typer.echo(f"{len(excluded)} problems excluded by the {profile.name} profile "
                   f"({excluded_reason(by_id[next(iter(excluded))], profile)})", err=True)
    if overwrite and out.exists():
        out.unlink()
    done = done_keys(out)
    seen: set[tuple[str, int]] = set()
    items = []
    for g in gens.records:
        if g.id in by_id and g.id not in excluded and g.key not in done and g.key not in seen:
            seen.add(g.key)
            items.append((by_id[g.id], g))
    if done:
        typer.echo(f"resuming: {len(done)} grades already in {out}, {len(items)} to grade", err=True)

    judge = Judge(judge_url, model=judge_model, cache_path=judge_cache) if judge_url else None
    try:
        with AppendWriter(out) as writer:
            for grade in iter_grades(items, profile=profile, workers=workers, timeout=timeout, judge=judge,
                                     progress=progress):
                if grade.key in replaced:
                    grade.extra["invalid_utf8"] = True
                writer.write(grade)
    finally:
        if judge is not None:
            judge.close()

    # Summarise every grade of this input in --out (this run's and resumed ones).
    wanted = {g.key for g in gens.records if g.id in by_id and g.id not in excluded}
    grades = [g for g in read_records(out, Grade, strict=False, resolve_images=False).records if g.key in wanted]
    summary = summarize(grades)
    summary["profile"] = profile.name
    Console().print(render_summary(summary, title=f"{generations.name} ({profile.name})"))
    if summary_json is not None:
        summary_json.parent.mkdir(parents=True, exist_ok=True)
        summary_json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def register(app: typer.Typer) -> None:
    app.command("grade")(grade_cmd)
