"""`run_generate`: problems in, one append-only `Generation` record per (problem, sample) out, resumable.

Each record is written (flushed and fsynced) the moment its completion finishes. A rerun reads the keys
already in the file and generates only the missing pairs, so a job killed at any moment (kill -9 included)
and restarted ends with exactly one record per pair: `AppendWriter` drops a torn last line on open.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from virgo.infer.backends.base import Backend, GenerationFailures, make_backend
from virgo.infer.config import GenerateConfig
from virgo.infer.requests import GenOutput, GenRequest
from virgo.records import AppendWriter, Generation, Problem, done_keys
from virgo.thought import parse_response


def to_generation(req: GenRequest, out: GenOutput, cfg: GenerateConfig, *, model: str, backend: str) -> Generation:
    """The record of one completion: its text split by `virgo.thought.parse_response`, and its settings."""
    parsed = parse_response(out.text)
    settings = {**cfg.settings(), "seed": out.seed if out.seed is not None else cfg.seed, "backend": backend}
    extra: dict[str, Any] = {}
    if cfg.thinking_budget is not None or cfg.force_wait:
        extra = {"budget_forced": out.budget_forced, "waits": out.waits}
    return Generation(
        id=req.id, sample=req.sample, text=out.text, finish_reason=out.finish_reason,
        thought=parsed.thought, solution=parsed.solution, status=parsed.status.value,
        prompt_tokens=out.prompt_tokens, completion_tokens=out.completion_tokens,
        thought_tokens=out.thought_tokens if parsed.thought is not None else None,
        model=model, settings=settings, extra=extra)


def pending_requests(problems: Sequence[Problem], cfg: GenerateConfig, done: set[tuple]) -> list[GenRequest]:
    """One request per (problem, sample) not yet in ``done``; a repeated problem id is generated once."""
    seen: set[str] = set()
    out = []
    for p in problems:
        if p.id in seen:
            warnings.warn(f"problem id {p.id!r} appears more than once; generating it once", stacklevel=3)
            continue
        seen.add(p.id)
        out += [GenRequest.from_problem(p, s, cfg) for s in range(cfg.n) if (p.id, s) not in done]
    return out


def run_generate(model: Any, problems: Sequence[Problem], out: str | Path, cfg: GenerateConfig, *,
                 backend: str = "transformers", base_url: str | None = None, api_key: str | None = None,
                 concurrency: int = 4, progress: bool = True, **backend_kw: Any) -> dict[str, Any]:
    """Generate ``cfg.n`` samples per problem into ``out`` (append-only JSONL of `Generation`); returns a summary.

    ``model`` is a checkpoint path (transformers), a served model name (openai), an already-loaded
    ``(model, processor)`` pair, or a `Backend`. Pairs already in ``out`` are skipped. Extra keywords go to
    `make_backend` (e.g. ``timeout``, ``max_retries`` for the openai backend; in-process backends ignore them).
    """
    from tqdm.auto import tqdm

    if cfg.greedy and cfg.n > 1:
        warnings.warn(f"n={cfg.n} samples with temperature 0 are identical; set a temperature to sample",
                      stacklevel=2)
    out = Path(out)
    done = done_keys(out)
    requests = pending_requests(problems, cfg, done)
    expected = len({p.id for p in problems}) * cfg.n
    summary: dict[str, Any] = {"out": str(out), "expected": expected, "already_done": expected - len(requests),
                               "generated": 0, "completion_tokens": 0, "finish": {}, "seconds": 0.0,
                               "tokens_per_second": None}
    if not requests:
        return summary

    own = not isinstance(model, Backend)
    be = make_backend(backend, model, dtype=cfg.dtype, base_url=base_url, api_key=api_key,
                      concurrency=concurrency, **backend_kw) if own else model
    finish: Counter[str] = Counter()
    tokens = 0
    failed: dict[int, BaseException] = {}
    t0 = time.monotonic()
    try:
        with AppendWriter(out) as writer, tqdm(total=len(requests), desc="generate", unit="gen",
                                                disable=not progress, dynamic_ncols=True) as bar:
            try:
                for i, o in be.iter_generate(requests, cfg):
                    writer.write(to_generation(requests[i], o, cfg, model=be.model_name, backend=be.name))
                    finish[o.finish_reason] += 1
                    tokens += o.completion_tokens or 0
                    elapsed = time.monotonic() - t0
                    bar.set_postfix_str(f"{tokens / max(elapsed, 1e-9):.1f} tok/s", refresh=False)
                    bar.update(1)
            except GenerationFailures as e:
                failed = e.failures  # every success is written; a rerun retries these
    finally:
        if own:
            be.close()
    elapsed = time.monotonic() - t0
    summary.update(generated=sum(finish.values()), completion_tokens=tokens, finish=dict(finish),
                   seconds=round(elapsed, 2), tokens_per_second=round(tokens / elapsed, 1) if elapsed > 0 else None)
    if failed:
        first = next(iter(failed.values()))
        summary["failed"] = len(failed)
        summary["first_error"] = str(first)
        warnings.warn(f"{len(failed)} generation(s) failed and were not written (first error: {first}); "
                      f"rerun to retry them", stacklevel=2)
    return summary
