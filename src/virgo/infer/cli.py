"""`virgo generate`, `virgo chat` and `virgo serve`, generated from their configs. Heavy imports stay inside."""

from __future__ import annotations

import json

import click

from virgo.config.cli import command, fail
from virgo.infer.config import ChatConfig, GenerateRunConfig


def run_generate_cmd(cfg: GenerateRunConfig) -> None:
    from virgo.infer.runner import run_generate
    from virgo.modeling.source import check_model_exists
    from virgo.records import Problem, read_records

    if cfg.engine.backend != "openai":
        check_model_exists(cfg.model)
    # A bad problem is reported and skipped; the good ones are generated. Nothing usable: one line, exit 2.
    items = read_records(cfg.problems, Problem, strict=False).warn_skipped("problem").require_usable().records
    if cfg.limit is not None:
        items = items[:cfg.limit]
    summary = run_generate(cfg.model, items, cfg.out, cfg.generate, progress=cfg.progress, force=cfg.force,
                           **cfg.engine.kwargs())
    click.echo(json.dumps(summary))
    if summary.get("failed"):
        fail(f"{summary['failed']} generation(s) failed, first: {summary['first_error']}. The others are written; "
             f"rerun the same command to retry only the failed ones.", code=1)


def run_chat_cmd(cfg: ChatConfig) -> None:
    from virgo.infer.chat import chat
    from virgo.infer.images import ImageError

    if cfg.base_url is None:
        from virgo.modeling.source import check_model_exists

        check_model_exists(cfg.model)
    try:
        chat(cfg.model, cfg.question, images=cfg.image, cfg=cfg.generate, base_url=cfg.base_url,
             api_key=cfg.api_key, sampling_extras=cfg.sampling_extras)
    except ImageError as e:
        fail(f"--image: {e}")


generate = command("generate", GenerateRunConfig, run_generate_cmd, help="""Batched, resumable long generation.

One Generation record per (problem, sample), flushed as it finishes; rerunning the same command skips the pairs
already written, and refuses (unless --force) when the output was written with other settings. The defaults are
the paper's decoding: greedy, repetition penalty 1.05, up to 8,192 new tokens, the think-boxed prompt.""")

chat = command("chat", ChatConfig, run_chat_cmd,
               help="""Chat with a model: the thought streams dimmed, then the answer.

Interactive defaults, on purpose not the paper's: a shorter token limit (2,048), and the question goes in as typed
(prompt plain, no boxed-answer instruction), because a person reads each answer as it streams. Greedy decoding and
the repetition penalty are the paper's. For the paper's exact decoding: --max-new-tokens 8192 --prompt
think-boxed.""")


def __getattr__(name: str):
    # `virgo serve`'s config lives with the server (virgo.infer.server), which imports FastAPI: build its
    # command only when it is asked for.
    if name == "serve":
        from virgo.infer.server.cli import serve

        return serve
    raise AttributeError(name)
