"""An evaluation run: generate (resumable) -> grade -> metrics -> manifest -> report, in one folder.

Run folder::

    run.json           what was asked: benchmark, split, model, decoding, grader profile, selection
    problems.jsonl     the exact problems evaluated (so re-scoring needs no data directory)
    generations.jsonl  append-only model outputs, one per (problem, sample); a killed run resumes
    grades.jsonl       one verdict per generation (rewritten by every scoring)
    grades.jsonl.partial  the grades of a scoring in progress, appended one by one; a killed scoring resumes
    metrics.json       accuracy, standard error, verdicts, breakdowns, thought analytics, pass@k / maj@k / mean@k
                       (virgo.eval.sampling), the benchmark's official metrics (virgo.eval.official)
    manifest.json      reproducibility manifest (virgo.eval.manifest); every (re)start appends a session
    report.md, report.json, plots/*.png

``evaluate(...)`` is the Python entry point (the CLI and the demo call it); ``rescore(run_dir)``
re-grades saved generations without generating again.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Any

from virgo.eval.layout import (
    GENERATIONS_FILE,
    GRADES_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    PARTIAL_GRADES_FILE,
    PROBLEMS_FILE,
    RUN_FILE,
    read_generations,
)
from virgo.records import AppendWriter, Generation, Grade, Problem, read_records, write_records
from virgo.records.runheader import RunMismatchError, describe, differences

# run.json keys that must match when a run folder is reused (anything else may change on resume).
IDENTITY_KEYS = ("benchmark", "split", "model", "generate", "ablation")


def _json_dump(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def _model_name(model: Any) -> str:
    if isinstance(model, (str, Path)):
        return str(model)
    return getattr(model, "name_or_path", None) or type(model).__name__


def prepare_run(run_dir: Path, problems: list[Problem], info: dict[str, Any]) -> None:
    """Create the run folder, or check that an existing one holds the same run (then it resumes)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    run_file, problems_file = run_dir / RUN_FILE, run_dir / PROBLEMS_FILE
    if run_file.exists():
        old = json.loads(run_file.read_text(encoding="utf-8"))
        diffs = differences(old, info, IDENTITY_KEYS)  # the run-header comparison generate and distill use
        if diffs:
            raise RunMismatchError(f"{run_dir} already holds a different run ({describe(diffs)}). Use a new --out "
                                   f"folder, or delete this one.")
        if problems_file.exists():
            old_ids = [p.id for p in read_records(problems_file, Problem, resolve_images=False)]
            if old_ids != [p.id for p in problems]:
                raise RunMismatchError(f"{run_dir} was started on a different problem selection "
                                       f"({len(old_ids)} vs {len(problems)} problems); use a new --out folder")
        info = {**old, **{k: v for k, v in info.items() if k not in ("created",)}}
    _json_dump(run_file, info)
    if not problems_file.exists():
        write_records(problems_file, problems)


def evaluate(model: Any, problems: list[Problem], run_dir: str | Path, gen_cfg: Any = None, profile: str = "default",
             *, benchmark: str | None = None, split: str | None = None, breakdowns: list[str] | None = None,
             backend: str = "transformers", base_url: str | None = None, api_key: str | None = None,
             concurrency: int = 4, judge: Any = None, workers: int | None = None, data_files: list[Path] | None = None,
             label: str | None = None, paper_column: str | None = None, ablation: dict[str, Any] | None = None,
             selection: dict[str, Any] | None = None, max_answer_chars: int | None = None, progress: bool = True,
             report: bool = True, official: str | None = None, engine: dict[str, Any] | None = None,
             grade: Any = None, timeout: float | None = None, show_k: list[int] | None = None) -> dict[str, Any]:
    """Generate, grade and score ``problems`` into ``run_dir``; returns the metrics dict.

    ``model`` is a model path / served model name, or an already-loaded model that the inference
    backend accepts. Re-running with the same folder resumes: only missing generations are made.
    ``max_answer_chars`` grades longer extracted answers wrong (OlympiadBench's official 100-character rule);
    ``grade`` (a `virgo.grade.config.GradeConfig`) sets any other grading override, kept in run.json for rescoring.
    ``official`` names the benchmark's official-metrics hook (its spec's ``metrics``); ``engine`` adds backend
    keywords (``timeout``, ``max_retries``); ``timeout`` bounds grading each response; ``show_k`` picks the k of
    pass@k / maj@k / mean@k the report shows.
    """
    from virgo.eval.manifest import build_manifest
    from virgo.infer import GenerateConfig, run_generate

    run_dir = Path(run_dir)
    # A mapping of decoding settings is accepted too, so a caller that only evaluates (training's checkpoint
    # selection) needs no import of the inference stage.
    gen_cfg = GenerateConfig(**gen_cfg) if isinstance(gen_cfg, dict) else (gen_cfg or GenerateConfig())
    settings = dataclasses.asdict(gen_cfg)
    overrides = {**grade_overrides(grade), **({"max_answer_chars": max_answer_chars} if max_answer_chars else {})}
    info = {
        "benchmark": benchmark, "split": split, "model": _model_name(model), "label": label, "backend": backend,
        "base_url": base_url, "profile": profile, "breakdowns": list(breakdowns or []), "paper_column": paper_column,
        "generate": settings, "ablation": ablation, "selection": selection or {}, "max_answer_chars": max_answer_chars,
        "grade": overrides, "official_metrics": official, "n_problems": len(problems),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    prepare_run(run_dir, problems, info)
    manifest_path = run_dir / MANIFEST_FILE
    if not manifest_path.exists():
        images = [img for p in problems for img in p.images]
        _json_dump(manifest_path, build_manifest(model=model, gen_settings=settings, prompt=gen_cfg.prompt,
                                                 chat_template=gen_cfg.chat_template,
                                                 data_files=data_files or [], images=images,
                                                 extra={"backend": backend, "base_url": base_url}))
    else:  # a resumed run: the first start stays on top, this one is appended (its code may differ)
        _record_session(run_dir, "eval")
    summary = run_generate(model, problems, run_dir / GENERATIONS_FILE, gen_cfg, backend=backend, base_url=base_url,
                           api_key=api_key, concurrency=concurrency, progress=progress, **(engine or {}))
    metrics = score(run_dir, profile=profile, max_answer_chars=max_answer_chars, grade=grade, judge=judge,
                    workers=workers, progress=progress, report=report, timeout=timeout, show_k=show_k)
    if summary.get("failed"):
        metrics["generation_failures"] = {"failed": summary["failed"], "first_error": summary.get("first_error")}
    return metrics


# GradeConfig fields that say how to run the grader, not what it decides (never part of a run's grading).
RUNTIME_GRADE_FIELDS = {"profile", "workers", "grade_timeout", "timeout", "judge_url", "judge_model", "judge_cache"}


def grade_overrides(grade: Any) -> dict[str, Any]:
    """The grading settings a GradeConfig changes from its profile (unset fields and runtime ones left out)."""
    if grade is None:
        return {}
    return {k: v for k, v in dataclasses.asdict(grade).items()
            if k not in RUNTIME_GRADE_FIELDS and v is not None and v != []}


def resolve_grader(info: dict[str, Any], profile: str | None, max_answer_chars: int | None,
                   grade: Any) -> tuple[str, dict[str, Any], Any]:
    """(profile name, overrides, Profile) for scoring: run.json's, with anything given now replacing it."""
    from virgo.grade.config import GradeConfig

    name = profile or (grade.profile if grade is not None and grade.profile else None) or info.get("profile") \
        or "default"
    overrides = {**(info.get("grade") or {}), **grade_overrides(grade)}
    if info.get("max_answer_chars") and "max_answer_chars" not in overrides:  # a run from before "grade" existed
        overrides["max_answer_chars"] = info["max_answer_chars"]
    if max_answer_chars:
        overrides["max_answer_chars"] = max_answer_chars
    known = {f.name for f in dataclasses.fields(GradeConfig)}
    cfg = GradeConfig(**{k: v for k, v in overrides.items() if k in known})
    return name, overrides, cfg.profile_obj(default=name)


def _grade_digest(problem: Problem, gen: Generation, grader: Any, judge: Any) -> str:
    """What a grade depends on: the grader's settings (and judge), the whole problem, the output and how it ended."""
    judged = (getattr(judge, "base_url", None), getattr(judge, "_model", None)) if judge is not None else None
    parts = (repr(grader), repr(judged), json.dumps(problem.to_dict(), sort_keys=True), gen.finish_reason, gen.text)
    return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()[:16]


def grade_resumably(run_dir: Path, pairs: list[tuple[Problem, Generation]], grader: Any, *, workers: int | None,
                    timeout: float, judge: Any, progress: bool) -> list[Grade]:
    """Grades of ``pairs``, in order. Each grade is appended to ``grades.jsonl.partial`` as it is made, so a
    scoring killed part way resumes with the grades already made (for the same output, problem and grader:
    see ``_grade_digest``); the caller replaces ``grades.jsonl`` once all are in, then drops the partial file."""
    from virgo.grade.batch import iter_grades

    partial = run_dir / PARTIAL_GRADES_FILE
    digests = {g.key: _grade_digest(p, g, grader, judge) for p, g in pairs}
    made: dict[tuple[str, int], Grade] = {}
    if partial.exists():
        for gr in read_records(partial, Grade, strict=False, resolve_images=False).records:
            if gr.extra.pop("digest", None) == digests.get(gr.key):
                made[gr.key] = gr
    todo = [(p, g) for p, g in pairs if g.key not in made]
    if todo:
        with AppendWriter(partial) as out:
            for (_, g), gr in zip(todo, iter_grades(todo, profile=grader, workers=workers, timeout=timeout,
                                                   judge=judge, progress=progress)):
                out.write({**gr.to_dict(), "digest": digests[g.key]})
                made[g.key] = gr
    return [made[g.key] for _, g in pairs]


def score(run_dir: str | Path, *, profile: str | None = None, max_answer_chars: int | None = None, grade: Any = None,
          judge: Any = None, workers: int | None = None, progress: bool = True, report: bool = True,
          timeout: float | None = None, show_k: list[int] | None = None) -> dict[str, Any]:
    """Grade the saved generations of a run and write grades, metrics (and the report).

    The grading settings (``profile``, ``max_answer_chars``, ``grade`` overrides) default to the run's (run.json);
    given, they replace it there, so a later rescore applies them again.
    """
    from virgo.eval import official
    from virgo.eval.metrics import compute_metrics
    from virgo.eval.sampling import grader_equivalence, sampling_metrics
    from virgo.grade import gradable

    run_dir = Path(run_dir)
    for name in (RUN_FILE, PROBLEMS_FILE):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir / name} not found: {run_dir} is not a `virgo eval` run folder")
    info = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    profile, overrides, grader = resolve_grader(info, profile, max_answer_chars, grade)
    max_answer_chars = overrides.get("max_answer_chars")
    if grade is not None:
        workers = grade.workers if workers is None else workers
        timeout = getattr(grade, "grade_timeout", None) if timeout is None else timeout
    timeout = timeout or 2.0
    problems = read_records(run_dir / PROBLEMS_FILE, Problem, resolve_images=False)
    by_id = {p.id: p for p in problems}
    generations = [g for g in read_generations(run_dir / GENERATIONS_FILE) if g.id in by_id]
    order = {p.id: i for i, p in enumerate(problems)}
    generations.sort(key=lambda g: (order[g.id], g.sample))
    # Items the grader cannot check (theorem proofs, when a loader was asked to include them) are generated
    # for human review but kept out of the accuracy.
    ungradable = {p.id for p in problems if not gradable(p, grader)}
    graded_gens = [g for g in generations if g.id not in ungradable]
    grades = grade_resumably(run_dir, [(by_id[g.id], g) for g in graded_gens], grader, workers=workers,
                             timeout=timeout, judge=judge, progress=progress)
    write_records(run_dir / GRADES_FILE, grades)
    (run_dir / PARTIAL_GRADES_FILE).unlink(missing_ok=True)
    gradable_problems = [p for p in problems if p.id not in ungradable]
    same = grader_equivalence(gradable_problems, grades, profile=grader, workers=workers, timeout=timeout)
    metrics = {"benchmark": info.get("benchmark"), "split": info.get("split"), "model": info.get("model"),
               "profile": profile, "max_answer_chars": max_answer_chars, "n_ungradable": len(ungradable),
               **compute_metrics(gradable_problems, graded_gens, grades, breakdown_keys=info.get("breakdowns") or []),
               "sampling": sampling_metrics(gradable_problems, grades, same),
               "official": official.compute(info.get("official_metrics"), gradable_problems, graded_gens, grades)}
    _json_dump(run_dir / METRICS_FILE, metrics)
    changed = {"profile": profile, "max_answer_chars": max_answer_chars, "grade": overrides}
    if any(info.get(k) != v for k, v in changed.items()):
        info.update(changed)
        _json_dump(run_dir / RUN_FILE, info)
    if report:
        from virgo.eval.report import render_report

        _write_view(run_dir)  # first, so the report links to it
        render_report([run_dir], show_k=show_k)
    return metrics


def _write_view(run_dir: Path) -> None:
    """The long-thought viewer page beside report.md; a page that cannot be built never fails the evaluation."""
    import warnings

    from virgo.view import write_view

    try:
        write_view(run_dir, out=run_dir / "view.html")
    except (OSError, ValueError) as e:
        warnings.warn(f"{run_dir}: view.html not written: {e}", stacklevel=2)


def _record_session(run_dir: Path, kind: str) -> None:
    from virgo.eval.manifest import add_session

    path = run_dir / MANIFEST_FILE
    if path.is_file():
        _json_dump(path, add_session(json.loads(path.read_text(encoding="utf-8")), kind))


def rescore(run_dir: str | Path, **kw: Any) -> dict[str, Any]:
    """Re-grade a finished (or interrupted) run's generations; generation is never repeated."""
    _record_session(Path(run_dir), "rescore")
    return score(run_dir, **kw)
