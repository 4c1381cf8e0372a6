"""An evaluation run: generate (resumable) -> grade -> metrics -> manifest -> report, in one folder.

Run folder::

    run.json           what was asked: benchmark, split, model, decoding, grader profile, selection
    problems.jsonl     the exact problems evaluated (so re-scoring needs no data directory)
    generations.jsonl  append-only model outputs, one per (problem, sample); a killed run resumes
    grades.jsonl       one verdict per generation (rewritten by every scoring)
    metrics.json       accuracy, standard error, verdicts, breakdowns, thought analytics
    manifest.json      reproducibility manifest (virgo.eval.manifest); every (re)start appends a session
    report.md, report.json, plots/*.png

``evaluate(...)`` is the Python entry point (the CLI and the demo call it); ``rescore(run_dir)``
re-grades saved generations without generating again.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from pathlib import Path
from typing import Any

from virgo.records import Generation, Grade, Problem, read_records, write_records

RUN_FILE, PROBLEMS_FILE, GENERATIONS_FILE = "run.json", "problems.jsonl", "generations.jsonl"
GRADES_FILE, METRICS_FILE, MANIFEST_FILE = "grades.jsonl", "metrics.json", "manifest.json"
# run.json keys that must match when a run folder is reused (anything else may change on resume).
IDENTITY_KEYS = ("benchmark", "split", "model", "generate", "ablation")


class RunMismatchError(ValueError):
    """The run folder holds a different run (other model, benchmark, decoding or problems)."""


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
        diffs = [k for k in IDENTITY_KEYS if old.get(k) != info.get(k)]
        if diffs:
            raise RunMismatchError(
                f"{run_dir} already holds a different run ({', '.join(diffs)} differ: "
                + "; ".join(f"{k}: {old.get(k)!r} -> {info.get(k)!r}" for k in diffs)
                + "). Use a new --out folder, or delete this one.")
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
             report: bool = True) -> dict[str, Any]:
    """Generate, grade and score ``problems`` into ``run_dir``; returns the metrics dict.

    ``model`` is a model path / served model name, or an already-loaded model that the inference
    backend accepts. Re-running with the same folder resumes: only missing generations are made.
    ``max_answer_chars`` grades longer extracted answers wrong (OlympiadBench's official 100-character rule).
    """
    from virgo.eval.manifest import build_manifest
    from virgo.infer import GenerateConfig, run_generate

    run_dir = Path(run_dir)
    gen_cfg = gen_cfg or GenerateConfig()
    settings = dataclasses.asdict(gen_cfg)
    info = {
        "benchmark": benchmark, "split": split, "model": _model_name(model), "label": label, "backend": backend,
        "base_url": base_url, "profile": profile, "breakdowns": list(breakdowns or []), "paper_column": paper_column,
        "generate": settings, "ablation": ablation, "selection": selection or {}, "max_answer_chars": max_answer_chars,
        "n_problems": len(problems), "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
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
    run_generate(model, problems, run_dir / GENERATIONS_FILE, gen_cfg, backend=backend, base_url=base_url,
                 api_key=api_key, concurrency=concurrency, progress=progress)
    return score(run_dir, profile=profile, max_answer_chars=max_answer_chars, judge=judge, workers=workers,
                 progress=progress, report=report)


def read_generations(path: Path) -> list[Generation]:
    """Generations of a run, one per (id, sample) (first wins); unreadable lines are reported, not fatal."""
    if not path.exists():
        return []
    result = read_records(path, Generation, strict=False, resolve_images=False)
    for err in result.errors:
        print(f"warning: skipped a bad generation record: {err}")
    seen: set[tuple[str, int]] = set()
    out = []
    for g in result.records:
        if g.key not in seen:
            seen.add(g.key)
            out.append(g)
    return out


def score(run_dir: str | Path, *, profile: str | None = None, max_answer_chars: int | None = None, judge: Any = None,
          workers: int | None = None, progress: bool = True, report: bool = True) -> dict[str, Any]:
    """Grade the saved generations of a run and write grades, metrics (and the report).

    ``profile`` / ``max_answer_chars`` default to the run's (run.json); given, they replace it there.
    """
    from virgo.eval.metrics import compute_metrics
    from virgo.grade import get_profile, gradable, grade_many

    run_dir = Path(run_dir)
    for name in (RUN_FILE, PROBLEMS_FILE):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir / name} not found: {run_dir} is not a `virgo eval` run folder")
    info = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    profile = profile or info.get("profile") or "default"
    if max_answer_chars is None:
        max_answer_chars = info.get("max_answer_chars")
    # As `virgo grade --max-answer-chars`: the named profile with that one field replaced.
    grader = get_profile(profile, max_answer_chars=max_answer_chars) if max_answer_chars else profile
    problems = read_records(run_dir / PROBLEMS_FILE, Problem, resolve_images=False)
    by_id = {p.id: p for p in problems}
    generations = [g for g in read_generations(run_dir / GENERATIONS_FILE) if g.id in by_id]
    order = {p.id: i for i, p in enumerate(problems)}
    generations.sort(key=lambda g: (order[g.id], g.sample))
    # Items the grader cannot check (theorem proofs, when a loader was asked to include them) are generated
    # for human review but kept out of the accuracy.
    ungradable = {p.id for p in problems if not gradable(p, grader)}
    graded_gens = [g for g in generations if g.id not in ungradable]
    grades: list[Grade] = grade_many([(by_id[g.id], g) for g in graded_gens], profile=grader, workers=workers,
                                     judge=judge, progress=progress)
    write_records(run_dir / GRADES_FILE, grades)
    metrics = {"benchmark": info.get("benchmark"), "split": info.get("split"), "model": info.get("model"),
               "profile": profile, "max_answer_chars": max_answer_chars, "n_ungradable": len(ungradable),
               **compute_metrics([p for p in problems if p.id not in ungradable], graded_gens, grades,
                                 breakdown_keys=info.get("breakdowns") or [])}
    _json_dump(run_dir / METRICS_FILE, metrics)
    if profile != info.get("profile") or max_answer_chars != info.get("max_answer_chars"):
        info.update(profile=profile, max_answer_chars=max_answer_chars)
        _json_dump(run_dir / RUN_FILE, info)
    if report:
        from virgo.eval.report import render_report

        render_report([run_dir])
    return metrics


def _record_session(run_dir: Path, kind: str) -> None:
    from virgo.eval.manifest import add_session

    path = run_dir / MANIFEST_FILE
    if path.is_file():
        _json_dump(path, add_session(json.loads(path.read_text(encoding="utf-8")), kind))


def rescore(run_dir: str | Path, **kw: Any) -> dict[str, Any]:
    """Re-grade a finished (or interrupted) run's generations; generation is never repeated."""
    _record_session(Path(run_dir), "rescore")
    return score(run_dir, **kw)
