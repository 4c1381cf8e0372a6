"""`virgo grade`: grade generations against gold answers; append-only output, resumable, with a summary."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click

from virgo.config.cli import command, fail, warn
from virgo.config.fields import opt, section
from virgo.grade.config import GradeConfig


@dataclass
class GradeRunConfig:
    """`virgo grade`: inputs, output and the grading settings."""

    problems: str = opt(short="-p", path=True, help="Problems JSONL (virgo Problem records): id, question, answer "
                        "(the gold), choices, answer_type, meta (tolerance/error, unit, is_multiple_answer, ...).")
    generations: str = opt(short="-g", path=True, help="Generations JSONL (virgo Generation records): id, sample, "
                           "text, finish_reason. Every record is graded against the problem with its id.")
    out: str = opt(short="-o", path=True, help="Grades JSONL, append-only: rerunning skips the (id, sample) pairs "
                   "already in it.")
    overwrite: bool = opt(False, help="Regrade everything: replace --out instead of resuming.")
    summary_json: str | None = opt(None, path=True, help="Also write the summary (accuracy, verdicts, graded_by) "
                                   "as JSON here.")
    progress: bool = opt(True, help="Show a progress bar.")
    grade: GradeConfig = section(GradeConfig, help="Grading")


GRADE_HELP = """Grade generations against gold answers and print a summary table.

Each response's thought is stripped and its final answer extracted (boxed, "the answer is", option letters). The
answer is compared with the gold one (Math-Verify, tolerances, units, multiple answers, option texts). Verdicts:
correct, wrong, no_answer, truncated; each grade names its extraction rule and deciding rule. Every response is
graded in a worker process under a hard time limit; rerunning resumes. Exits 2 when no input record is usable."""


def grade_cmd(cfg: GradeRunConfig) -> None:
    from rich.console import Console

    from virgo.grade import render_summary, summarize
    from virgo.grade.batch import iter_grades
    from virgo.grade.profiles import excluded_reason
    from virgo.records import AppendWriter, Generation, Grade, Problem, done_keys, read_records

    problems, generations, out = Path(cfg.problems), Path(cfg.generations), Path(cfg.out)
    try:
        profile = cfg.grade.profile_obj()
    except ValueError as e:
        fail(str(e))

    # Read inputs: bad lines are reported with file, line and field; the good records are all graded. Model
    # output with bytes that are not UTF-8 is graded too (decoded with U+FFFD; its grade says so): dropping it
    # would shrink n and inflate the accuracy.
    probs = read_records(problems, Problem, strict=False, resolve_images=False)
    gens = read_records(generations, Generation, strict=False, resolve_images=False, replace_invalid_utf8=True)
    for err in probs.errors + gens.errors:
        warn(f"skipped a bad record: {err}")
    replaced_lines = {line for line, _ in gens.replaced}
    replaced = {g.key for g, line in zip(gens.records, gens.lines) if line in replaced_lines}
    for line, why in gens.replaced:
        warn(f"{generations}:{line}: {why}: decoded with U+FFFD replacement characters and graded "
              f"(its grade has invalid_utf8=true)")
    by_id = {p.id: p for p in probs.records}
    if not by_id:
        fail(f"{problems}: no usable problems ({len(probs.errors)} bad record(s))")
    if not gens.records:
        fail(f"{generations}: no usable generations ({len(gens.errors)} bad record(s))")

    unknown = sorted({g.id for g in gens.records if g.id not in by_id})
    if unknown:
        warn(f"{len(unknown)} generation ids have no problem in {problems} and are not graded "
              f"(e.g. {', '.join(unknown[:5])})")
    excluded = {pid for pid, p in by_id.items() if excluded_reason(p, profile)}
    if excluded:
        click.echo(f"{len(excluded)} problems excluded by the {profile.name} profile "
                   f"({excluded_reason(by_id[next(iter(excluded))], profile)})", err=True)
    if cfg.overwrite and out.exists():
        out.unlink()
    done = done_keys(out)
    seen: set[tuple[str, int]] = set()
    items = []
    for g in gens.records:
        if g.id in by_id and g.id not in excluded and g.key not in done and g.key not in seen:
            seen.add(g.key)
            items.append((by_id[g.id], g))
    if done:
        click.echo(f"resuming: {len(done)} grades already in {out}, {len(items)} to grade", err=True)

    judge = cfg.grade.judge()
    try:
        with AppendWriter(out) as writer:
            for grade in iter_grades(items, profile=profile, workers=cfg.grade.workers,
                                     timeout=cfg.grade.grade_timeout, judge=judge, progress=cfg.progress):
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
    if cfg.summary_json is not None:
        summary_json = Path(cfg.summary_json)
        summary_json.parent.mkdir(parents=True, exist_ok=True)
        summary_json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


grade = command("grade", GradeRunConfig, grade_cmd, help=GRADE_HELP)
