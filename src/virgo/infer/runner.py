"""`run_generate`: problems in, one append-only `Generation` record per (problem, sample) out, resumable.

Each record is written (flushed and fsynced) the moment its completion finishes. A rerun reads the keys
already in the file and generates only the missing pairs, so a job killed at any moment (kill -9 included)
and restarted ends with exactly one record per pair: `AppendWriter` drops a torn last line on open.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from virgo.infer.backends.base import Backend, GenerationFailures
from virgo.infer.backends.registry import make_backend
from virgo.infer.config import GenerateConfig
from virgo.infer.requests import GenOutput, GenRequest
from virgo.records import AppendWriter, Generation, Problem, RecordError, done_keys
from virgo.records.jsonl import iter_lines, loads
from virgo.records.runheader import describe, guard, read_header
from virgo.records.strictjson import scrub_surrogates
from virgo.thought import parse_response


def to_generation(req: GenRequest, out: GenOutput, cfg: GenerateConfig, *, model: str, backend: str) -> Generation:
    """The record of one completion: its text split by `virgo.thought.parse_response`, and its settings.

    A lone surrogate in the text (a server's JSON may send one) becomes U+FFFD: the record must be writable.
    """
    text = scrub_surrogates(out.text)
    parsed = parse_response(text)
    settings = {**cfg.settings(), "seed": out.seed if out.seed is not None else cfg.seed, "backend": backend}
    extra: dict[str, Any] = dict(out.extra)  # what the backend tells of this completion (e.g. its endpoint)
    if cfg.thinking_budget is not None or cfg.force_wait:
        extra.update(budget_forced=out.budget_forced, waits=out.waits, interventions=out.interventions)
    return Generation(
        id=req.id, sample=req.sample, text=text, finish_reason=out.finish_reason,
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


def model_identity(model: Any) -> str:
    """What names the model in a run header: a local directory by its real path (so ``./m`` and ``/abs/m``
    are the same model), a hub id or served name as given, a loaded model by its config's name or path."""
    if isinstance(model, Backend):
        return model.model_name
    if isinstance(model, tuple) and model:
        config = getattr(model[0], "config", None)
        model = getattr(config, "_name_or_path", "") or type(model[0]).__name__
    name = str(model)
    return os.path.realpath(name) if os.path.isdir(name) else name


def _sha256(load: Any, name: str | None) -> str | None:
    """A short digest of a template's text: a file given by path is read afresh (the loaders cache)."""
    if not name or name == "auto":
        return None
    try:
        text = Path(name).read_text(encoding="utf-8") if os.path.isfile(name) else load(name)
    except (ValueError, OSError):
        return None
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def generate_identity(model: Any, cfg: GenerateConfig) -> dict[str, Any]:
    """The settings that decide what a generation file holds: model, decoding, prompt and chat template (by name
    and by the text they load), thinking budget, force_wait, and the seed when sampling (greedy ignores it)."""
    from virgo.prompts import load_chat_template, load_prompt

    return {"model": model_identity(model), **cfg.settings(), "seed": None if cfg.greedy else cfg.seed,
            "prompt_sha256": _sha256(load_prompt, cfg.prompt),
            "chat_template_sha256": _sha256(load_chat_template, cfg.chat_template)}


def _identity_in_records(out: Path) -> dict[str, Any] | None:
    """For an output written before run headers: the identity its first readable record carries."""
    for _, text, err in iter_lines(out):
        try:
            g = Generation.from_dict(loads(text)) if err is None and text else None
        except RecordError:
            continue
        if g is not None and g.settings:
            # Not the seed: a record holds its own (problem, sample) seed, not the run's base seed.
            seen = {k: g.settings[k] for k in GenerateConfig().settings() if k in g.settings}
            return {"model": model_identity(g.model), **seen} if g.model else seen
    return None


def guard_output(model: Any, out: Path, cfg: GenerateConfig, *, force: bool = False,
                 info: dict[str, Any] | None = None) -> None:
    """Refuse (RunMismatchError) to resume ``out`` with other settings than it was written with, unless
    ``force``; writes ``out``'s run header (``virgo.records.runheader``)."""
    previous = _identity_in_records(out) if out.exists() and read_header(out) is None else None
    changed = guard(out, "generate", generate_identity(model, cfg), force=force, previous=previous, info=info)
    if changed:
        warnings.warn(f"{out}: appending with other settings than it was written with ({describe(changed)}), "
                      f"as forced; the header records the change", stacklevel=3)


def run_generate(model: Any, problems: Sequence[Problem], out: str | Path, cfg: GenerateConfig, *,
                 backend: str = "transformers", base_url: str | None = None, api_key: str | None = None,
                 concurrency: int = 4, progress: bool = True, force: bool = False,
                 **backend_kw: Any) -> dict[str, Any]:
    """Generate ``cfg.n`` samples per problem into ``out`` (append-only JSONL of `Generation`); returns a summary.

    ``model`` is a checkpoint path (transformers), a served model name (openai; None: the server's), an already-loaded
    ``(model, processor)`` pair, or a `Backend`. Pairs already in ``out`` are skipped. ``out`` was written with
    other settings (``generate_identity``: model, decoding, templates, budget)? Then this raises
    RunMismatchError naming each difference, unless ``force``. Extra keywords go to `make_backend` (e.g.
    ``timeout``, ``max_retries`` for the openai backend; in-process backends ignore them).
    """
    from tqdm.auto import tqdm

    if cfg.greedy and cfg.n > 1:
        warnings.warn(f"n={cfg.n} samples with temperature 0 are identical; set a temperature to sample",
                      stacklevel=2)
    out = Path(out)
    own = not isinstance(model, Backend)

    def open_backend() -> Backend:
        return make_backend(backend, model, dtype=cfg.dtype, base_url=base_url, api_key=api_key,
                            concurrency=concurrency, **backend_kw) if own else model

    # No model name (openai): the server names its model, and the run header must name it too: ask it first.
    be = open_backend() if model is None else None
    guard_output(be if be is not None else model, out, cfg, force=force,
                 info={"backend": backend, "base_url": base_url,
                       **({"replicas": list(backend_kw["replicas"])} if backend_kw.get("replicas") else {})})
    done = done_keys(out)
    requests = pending_requests(problems, cfg, done)
    expected = len({p.id for p in problems}) * cfg.n
    summary: dict[str, Any] = {"out": str(out), "expected": expected, "already_done": expected - len(requests),
                               "generated": 0, "completion_tokens": 0, "finish": {}, "seconds": 0.0,
                               "tokens_per_second": None}
    if not requests:
        if be is not None and own:
            be.close()
        return summary
    be = be or open_backend()
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
                   seconds=round(elapsed, 2), tokens_per_second=round(tokens / elapsed, 1) if elapsed > 0 else None,
                   **be.stats())
    if failed:
        first = next(iter(failed.values()))
        summary["failed"] = len(failed)
        summary["first_error"] = str(first)
        warnings.warn(f"{len(failed)} generation(s) failed and were not written (first error: {first}); "
                      f"rerun to retry them", stacklevel=2)
    return summary
