"""`virgo chat`: stream a model's answer with the thought and the solution visibly apart.

The thought streams dimmed under a "thinking" rule, the solution in normal text under an "answer" rule, as the
tokens arrive. Locally (transformers backend, with budget control) or from any OpenAI-compatible server that
streams ``reasoning_content`` (``--base-url``). Its defaults are interactive ones, not the paper's
(`virgo.infer.config.CHAT_MAX_NEW_TOKENS`, `CHAT_PROMPT`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from virgo.infer.config import CHAT_MAX_NEW_TOKENS, CHAT_PROMPT, GenerateConfig
from virgo.infer.requests import GenRequest
from virgo.infer.split import ANSWER, THOUGHT, StreamSplitter, split_reasoning
from virgo.prompts import user_content


class SplitPrinter:
    """Prints (kind, text) pieces to a rich console: a rule when the section changes, the thought dimmed."""

    def __init__(self, console):
        self.console = console
        self.section: str | None = None

    def __call__(self, pieces: Iterable[tuple[str, str]]) -> None:
        for kind, text in pieces:
            if kind != self.section:
                if self.section is not None:
                    self.console.print()
                self.console.rule("thinking" if kind == THOUGHT else "answer", style="dim" if kind == THOUGHT
                                  else "bold")
                self.section = kind
            self.console.print(text, style="dim" if kind == THOUGHT else None, end="", markup=False,
                               highlight=False, soft_wrap=True)

    def end(self, note: str | None = None) -> None:
        self.console.print()
        if note:
            self.console.print(note, style="dim italic", markup=False, highlight=False)


def user_message(question: str, num_images: int, prompt: str) -> dict[str, Any]:
    return {"role": "user", "content": user_content(question, num_images, prompt)}


def stream_local(backend, messages: list[dict], images: list[Any], cfg: GenerateConfig,
                 show: Callable[[Iterable[tuple[str, str]]], None]):
    """Generate one answer with the transformers backend, showing it as it comes; returns the GenOutput."""
    splitter = StreamSplitter()
    req = GenRequest(messages, images, id="chat", on_text=lambda t: show(splitter.feed(t)))
    out = backend.generate([req], cfg)[0]
    show(splitter.finish())
    return out


def stream_remote(client, model: str, messages: list[dict], images: list[Any], cfg: GenerateConfig,
                  show: Callable[[Iterable[tuple[str, str]]], None], *,
                  sampling_extras: bool = True) -> tuple[str, str]:
    """Stream from an OpenAI-compatible server; returns (answer text, finish reason)."""
    from virgo.infer.backends.openai_backend import SEED_RANGE, request_fields, to_openai_messages

    fields, extra = request_fields(cfg, extras=sampling_extras)
    seed = GenRequest(messages, images, id="chat").resolved_seed(cfg) % SEED_RANGE  # seeded as a local chat is
    stream = client.chat.completions.create(model=model, messages=to_openai_messages(messages, images), seed=seed,
                                            stream=True, extra_body=extra or None, **fields)
    answer, finish = [], "stop"
    for chunk in stream:
        for c in chunk.choices:
            reasoning = (c.delta.model_extra or {}).get("reasoning_content")
            if reasoning:
                show([(THOUGHT, reasoning)])
            if c.delta.content:
                answer.append(c.delta.content)
                show([(ANSWER, c.delta.content)])
            finish = c.finish_reason or finish
    return "".join(answer), finish


def chat(model: Any, question: str | None, *, images: list[str] = (), cfg: GenerateConfig | None = None,
         base_url: str | None = None, api_key: str | None = None, sampling_extras: bool = True, console=None,
         read_line: Callable[[str], str] = input) -> None:
    """One question, or (without one) a conversation read line by line until an empty line or EOF.

    ``model`` is a checkpoint path, a loaded ``(model, processor)`` pair, or a transformers `Backend`.

    Later turns keep the earlier answers but not their thoughts, as reasoning models are usually prompted.
    """
    from rich.console import Console

    console = console or Console(highlight=False)
    cfg = cfg or GenerateConfig(max_new_tokens=CHAT_MAX_NEW_TOKENS, prompt=CHAT_PROMPT)
    backend = client = None
    if base_url:
        import os

        from openai import OpenAI

        from virgo.infer.backends.openai_backend import request_fields

        request_fields(cfg, extras=sampling_extras)  # settings the API cannot take: refused before any question
        client = OpenAI(base_url=base_url, api_key=api_key or os.environ.get("VIRGO_API_KEY") or "EMPTY")
        model = model or client.models.list().data[0].id
    else:
        from virgo.infer.backends.base import Backend
        from virgo.infer.backends.transformers_backend import TransformersBackend

        backend = model if isinstance(model, Backend) else TransformersBackend(model, dtype=cfg.dtype)
    messages: list[dict] = [{"role": "system", "content": cfg.system}] if cfg.system else []
    all_images: list[Any] = []
    pending_images = list(images)
    while True:
        q = question if question is not None else _read(read_line)
        if not q:
            return
        messages.append(user_message(q, len(pending_images), cfg.prompt))
        all_images += pending_images
        pending_images = []
        show = SplitPrinter(console)
        if backend is not None:
            out = stream_local(backend, messages, all_images, cfg, show)
            answer, finish = split_reasoning(out.text)[1], out.finish_reason
            note = (f"[{out.completion_tokens} tokens, {out.thought_tokens} thinking"
                    + (", budget reached" if out.budget_forced else "")
                    + (f", {out.waits} x Wait" if out.waits else "") + f", finish: {finish}]")
        else:
            answer, finish = stream_remote(client, model, messages, all_images, cfg, show,
                                           sampling_extras=sampling_extras)
            note = f"[finish: {finish}]"
        show.end(note)
        messages.append({"role": "assistant", "content": answer})
        if question is not None:
            return


def _read(read_line: Callable[[str], str]) -> str:
    try:
        return read_line(">>> ").strip()
    except EOFError:
        return ""
