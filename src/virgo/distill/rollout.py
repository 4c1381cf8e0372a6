"""Teacher rollouts and their grades, on top of the inference stage and the grading library.

Rollouts are `virgo.infer.run_generate` with ``n`` samples and sampling settings, against either an
OpenAI-compatible server (a ``vllm serve``d QVQ, ``virgo serve``, a hosted API) or a local model; that
loop owns retries, concurrency and the append-only, resumable output. Grades are
`virgo.grade.grade_many` against the gold answers, cached in an append-only file keyed by a digest of
(rollout text, gold answer, grading profile), so a resumed run grades only what is new or changed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from virgo.records import AppendWriter, Generation, Grade, Problem, RecordError, read_records, write_records


def is_url(teacher: Any) -> bool:
    return isinstance(teacher, str) and teacher.startswith(("http://", "https://"))


def distill_rollouts(problems: Sequence[Problem], teacher: Any, out: str | Path, cfg: Any, *,
                     teacher_model: str | None = None, api_key: str | None = None, concurrency: int = 4,
                     timeout: float | None = None, max_retries: int | None = None, progress: bool = True,
                     force: bool = False, **generate_kw: Any) -> dict[str, Any]:
    """``cfg.n`` rollouts per problem from ``teacher`` into the append-only ``out``; returns a summary.

    ``teacher`` is a URL (OpenAI-compatible backend; ``teacher_model`` is the served model name, None: the
    model the server lists first), a local model directory (transformers backend), or anything else
    `run_generate` accepts as a model (e.g. an already-loaded ``(model, processor)``). ``cfg`` is a
    `virgo.infer.GenerateConfig`; extra keyword arguments go to `run_generate` unchanged. ``timeout`` (seconds
    per request) and ``max_retries`` go to the OpenAI backend of a URL teacher (None: the backend's defaults); a
    local teacher has no requests to time out. Rerunning resumes: pairs already in ``out`` are skipped; a rerun
    with another teacher or other settings refuses (RunMismatchError; the run header is ``OUT.run.json``) unless
    ``force``.
    """
    from virgo.infer import run_generate

    out = Path(out)
    t0 = time.monotonic()
    if is_url(teacher):
        http = {k: v for k, v in (("timeout", timeout), ("max_retries", max_retries)) if v is not None}
        summary = run_generate(teacher_model, list(problems), out, cfg, backend="openai",
                               base_url=teacher, api_key=api_key, concurrency=concurrency, progress=progress,
                               force=force, **http, **generate_kw)
    else:
        model = str(teacher) if isinstance(teacher, Path) else teacher
        summary = run_generate(model, list(problems), out, cfg, backend="transformers", concurrency=concurrency,
                               progress=progress, force=force, **generate_kw)
    wall = time.monotonic() - t0
    return {**(summary or {}), **rollout_summary(problems, out, cfg.n, wall)}


def read_rollouts(path: str | Path, *, sample0: bool = False) -> list[Generation]:
    """The rollouts of a file: bad lines reported (one warning each) and skipped; none usable is an error
    (NoUsableRecords); model output that is not valid UTF-8 is kept, with U+FFFD."""
    res = read_records(path, Generation, strict=False, resolve_images=False, replace_invalid_utf8=True)
    gens = res.warn_skipped("rollout").require_usable(allow_empty=True).records
    return [g for g in gens if g.sample == 0] if sample0 else gens


def rollout_summary(problems: Sequence[Problem], out: str | Path, n: int | None,
                    wall_seconds: float | None = None) -> dict:
    """Counts and token totals of a rollout file, against what ``n`` samples per problem should give."""
    gens = read_rollouts(out) if Path(out).exists() else []
    ids = {p.id for p in problems}
    mine = [g for g in gens if g.id in ids and (n is None or g.sample < n)]
    prompt_tokens = sum(g.prompt_tokens or 0 for g in mine)
    completion_tokens = sum(g.completion_tokens or 0 for g in mine)
    s: dict[str, Any] = {"records": len(mine)}
    if n is not None:
        s["expected"] = len(ids) * n
        s["missing"] = len(ids) * n - len({g.key for g in mine})
    s.update({
        "finish_length": sum(g.finish_reason == "length" for g in mine),
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
    })
    if wall_seconds is not None:
        s["wall_seconds"] = round(wall_seconds, 2)
        s["completion_tokens_per_second"] = round(completion_tokens / wall_seconds, 1) if wall_seconds > 0 else None
    return s


def grade_digest(gen: Generation, problem: Problem, profile: Any) -> str:
    """What a grade depends on: the rollout text, the gold answer and the grading profile (its name, or every
    setting of a `virgo.grade.Profile`, so a changed setting regrades)."""
    h = hashlib.sha1()
    for part in (profile if isinstance(profile, str) else repr(profile), problem.answer, repr(problem.choices),
                 gen.finish_reason, gen.text):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def grade_rollouts(problems: Sequence[Problem], rollouts: Sequence[Generation], grades_path: str | Path, *,
                   profile: str = "default", workers: int | None = None, timeout: float = 2.0,
                   progress: bool = False) -> list[Grade]:
    """Grades for ``rollouts`` (same order), reusing still-valid cached grades in ``grades_path``.

    Rollouts whose problem is unknown are not graded (and get no grade).
    """
    from virgo.grade import grade_many

    grades_path = Path(grades_path)
    problem_of = {p.id: p for p in problems}
    todo = [g for g in rollouts if g.id in problem_of]
    digest = {g.key: grade_digest(g, problem_of[g.id], profile) for g in todo}

    cached: dict[tuple[str, int], Grade] = {}
    stale = 0
    if grades_path.exists():
        res = read_records(grades_path, Grade, strict=False, resolve_images=False)
        for gr in res.records:
            if digest.get(gr.key) == gr.extra.get("digest"):
                cached[gr.key] = gr  # the last valid one wins
            else:
                stale += 1
        stale += len(res.errors)
    missing = [g for g in todo if g.key not in cached]
    if missing:
        new = grade_many([(problem_of[g.id], g) for g in missing], profile=profile, workers=workers,
                         timeout=timeout, progress=progress)
        with AppendWriter(grades_path) as w:
            for g, gr in zip(missing, new):
                gr.extra["digest"] = digest[g.key]
                w.write(gr)
                cached[g.key] = gr
    if stale:
        # Drop grades of rollouts that changed or vanished, so the file holds one valid grade per rollout.
        write_records(grades_path, [cached[g.key] for g in todo if g.key in cached])
    return [cached[g.key] for g in todo]


def load_base_grades(path: str | Path, problems: Sequence[Problem], grades_path: str | Path | None = None, *,
                     profile: str = "default", workers: int | None = None, timeout: float = 2.0) -> list[Grade]:
    """The base model's greedy grades from a file of Grade records, or of Generation records (graded here).

    Which of the two is told by the first line that parses; bad lines are reported and skipped, and a file
    with none usable is an error (NoUsableRecords).
    """
    from virgo.records.jsonl import iter_lines, loads

    path = Path(path)
    is_grade = None
    for _, text, _ in iter_lines(path):
        try:
            row = loads(text) if text else None
        except RecordError:
            continue
        if isinstance(row, dict):
            is_grade = "verdict" in row
            break
    if is_grade is None and not any(True for _ in iter_lines(path)):
        return []
    if is_grade:
        res = read_records(path, Grade, strict=False, resolve_images=False)
        return res.warn_skipped("base grade").require_usable().records
    gens = read_rollouts(path, sample0=True)
    grades_path = Path(grades_path) if grades_path else path.with_name(path.stem + ".grades.jsonl")
    return grade_rollouts(problems, gens, grades_path, profile=profile, workers=workers, timeout=timeout)
