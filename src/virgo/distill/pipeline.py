"""The whole distillation run: teacher rollouts -> grades -> (base greedy grades) -> filtered dataset + stats.

Every step writes a file next to the rollouts and is safe to rerun: rollouts and grades resume, the
dataset and stats are rewritten from them (they are cheap, deterministic functions of the rollouts).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from virgo.distill.bands import PAPER, BandSpec
from virgo.distill.dataset import build_dataset
from virgo.distill.filters import FormatSpec
from virgo.distill.rollout import distill_rollouts, grade_rollouts, load_base_grades, rollout_summary
from virgo.records import Generation, Grade, LongThoughtExample, Problem, read_records, write_records


@dataclass(frozen=True)
class DistillPaths:
    """Where one run writes; by default beside the rollouts file ``R.jsonl``."""

    rollouts: Path
    grades: Path  # R.grades.jsonl
    dataset: Path  # R.dataset.jsonl
    stats: Path  # R.stats.json
    base_rollouts: Path  # R.base.jsonl (only with a base model to run)
    base_grades: Path  # R.base.grades.jsonl

    @classmethod
    def beside(cls, out: str | Path, *, dataset: str | Path | None = None, stats: str | Path | None = None,
               grades: str | Path | None = None) -> DistillPaths:
        out = Path(out)

        def sib(suffix: str) -> Path:
            return out.with_name(out.stem + suffix)

        dataset = Path(dataset) if dataset else sib(".dataset.jsonl")
        return cls(rollouts=out, grades=Path(grades) if grades else sib(".grades.jsonl"), dataset=dataset,
                   stats=Path(stats) if stats else dataset.with_name(dataset.stem + ".stats.json"),
                   base_rollouts=sib(".base.jsonl"), base_grades=sib(".base.grades.jsonl"))


def _with_relative_images(examples: Sequence[LongThoughtExample], dataset: Path) -> list[dict[str, Any]]:
    # Image paths in records resolve relative to the file naming them: write local paths relative to the
    # dataset file, so a directory holding the dataset and its images can move as a whole.
    root = dataset.resolve().parent
    rows = []
    for ex in examples:
        d = ex.to_dict()
        d["images"] = [os.path.relpath(p, root) if Path(p).is_absolute() else p for p in ex.images]
        rows.append(d)
    return rows


def distill(
    problems: Sequence[Problem],
    teacher: Any,
    out: str | Path,
    cfg: Any = None,
    *,
    paths: DistillPaths | None = None,
    rollouts: bool = True,
    base_greedy: str | Path | Sequence[Grade] | None = None,
    base_model: Any = None,
    base_model_name: str | None = None,
    band: str = "solved",
    policy: str = "shortest",
    seed: int = 0,
    random_size: int | None = None,
    band_spec: BandSpec = PAPER,
    format_spec: FormatSpec = FormatSpec(),
    profile: str = "default",
    grade_workers: int | None = None,
    grade_timeout: float = 2.0,
    source: str | None = None,
    teacher_model: str | None = None,
    api_key: str | None = None,
    concurrency: int = 4,
    timeout: float | None = None,
    max_retries: int | None = None,
    progress: bool = True,
    count_tokens: Any = None,
    **generate_kw: Any,
) -> dict[str, Any]:
    """Roll out, grade, band, filter and write the long-thought dataset; returns {"rollout", "stats", "paths"}.

    ``rollouts=False`` skips generation and filters what ``out`` already holds. Base-model greedy answers
    come from ``base_greedy`` (a JSONL of Generation or Grade records, or Grade objects) or are generated
    by ``base_model`` (URL or local path; greedy, one sample, same prompt) into ``paths.base_rollouts``.
    ``timeout`` / ``max_retries`` apply to URL teachers and base models (per request). Problems with fewer
    than ``cfg.n`` rollouts are incomplete (``stats["incomplete"]``): not banded, no example; resume the run.
    """
    from virgo.grade import gradable, summarize

    paths = paths or DistillPaths.beside(out)
    t0 = time.monotonic()
    # Problems without a checkable final answer (theorem proofs) can never count as solved: skip them.
    excluded = [p.id for p in problems if not gradable(p, profile)]
    if excluded:
        problems = [p for p in problems if gradable(p, profile)]
    if rollouts:
        if cfg is None:
            raise ValueError("a GenerateConfig is needed to roll out the teacher")
        rollout = distill_rollouts(problems, teacher, paths.rollouts, cfg, teacher_model=teacher_model,
                                   api_key=api_key, concurrency=concurrency, timeout=timeout,
                                   max_retries=max_retries, progress=progress, **generate_kw)
    else:
        if not paths.rollouts.exists():
            raise FileNotFoundError(f"{paths.rollouts}: no rollouts to filter")
        rollout = rollout_summary(problems, paths.rollouts, cfg.n if cfg is not None else None)

    gens = read_records(paths.rollouts, Generation)
    n = cfg.n if cfg is not None else None
    t_grade = time.monotonic()
    # Samples >= n (left by an earlier run with a larger --n) are not graded; build_dataset counts them.
    grades = grade_rollouts(problems, [g for g in gens if n is None or g.sample < n], paths.grades,
                            profile=profile, workers=grade_workers, timeout=grade_timeout, progress=progress)

    base_grades: list[Grade] | None = None
    if base_model is not None:
        if cfg is None:
            raise ValueError("a GenerateConfig is needed to run the base model")
        greedy = dataclasses.replace(cfg, n=1, temperature=0.0, top_p=1.0)
        distill_rollouts(problems, base_model, paths.base_rollouts, greedy, teacher_model=base_model_name,
                         api_key=api_key, concurrency=concurrency, timeout=timeout, max_retries=max_retries,
                         progress=progress, **generate_kw)
        base_greedy = paths.base_rollouts
    if isinstance(base_greedy, (str, Path)):
        base_grades = load_base_grades(base_greedy, problems, paths.base_grades, profile=profile,
                                       workers=grade_workers, timeout=grade_timeout)
    elif base_greedy is not None:
        base_grades = list(base_greedy)
    grade_seconds = time.monotonic() - t_grade

    examples, stats = build_dataset(problems, gens, grades, base_grades, band=band, policy=policy, seed=seed,
                                    random_size=random_size, band_spec=band_spec, format_spec=format_spec,
                                    source=source, count_tokens=count_tokens, n=n)
    write_records(paths.dataset, _with_relative_images(examples, paths.dataset))
    stats = {
        **stats,
        "excluded_problems": len(excluded),
        "rollout": rollout,
        "grading": {"profile": profile, "seconds": round(grade_seconds, 2), "teacher": summarize(grades),
                    "base": summarize(base_grades) if base_grades is not None else None},
        "format_spec": dataclasses.asdict(format_spec),
        "seconds": round(time.monotonic() - t0, 2),
        "paths": {k: str(v) for k, v in dataclasses.asdict(paths).items()},
    }
    if cfg is not None and dataclasses.is_dataclass(cfg):
        stats["generate_config"] = dataclasses.asdict(cfg)
    paths.stats.parent.mkdir(parents=True, exist_ok=True)
    tmp = paths.stats.with_name(paths.stats.name + ".tmp")
    tmp.write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(paths.stats)
    return {"rollout": rollout, "stats": stats, "paths": paths, "examples": examples}
