"""What a backend is asked to generate (`GenRequest`) and what it gives back (`GenOutput`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from virgo.infer.config import GenerateConfig, sample_seed
from virgo.prompts import build_messages
from virgo.records import Problem

# Called with each new piece of decoded text while a request is generated; returning False stops it.
TextCallback = Callable[[str], "bool | None"]
# Asked before every decoding step of a request; True drops it from the batch (finish_reason "cancelled").
StopCheck = Callable[[], bool]


@dataclass
class GenRequest:
    """One completion to make: chat messages in `virgo.prompts` form plus the images they refer to, in order.

    ``messages`` use ``{"type": "image"}`` parts as placeholders; ``images`` holds, in the same order, file
    paths or already-open PIL images. ``cfg`` overrides the call's settings for this request only (the server
    batches requests with different settings). ``on_text`` streams decoded text as it is generated;
    ``should_stop`` lets the caller drop the request mid-generation (the server, for a client that went away).
    """

    messages: list[dict[str, Any]]
    images: list[Any] = field(default_factory=list)
    id: str = ""
    sample: int = 0
    seed: int | None = None  # sampling seed; None = derived from (cfg.seed, id, sample)
    cfg: GenerateConfig | None = None
    on_text: TextCallback | None = None
    should_stop: StopCheck | None = None
    # The caller chose max_new_tokens itself (an API request's max_tokens): a prompt that leaves less room than that
    # in the model's context fails the request, as vLLM and OpenAI answer it. Otherwise the row ends at the context.
    max_tokens_given: bool = False

    @classmethod
    def from_problem(cls, problem: Problem, sample: int, cfg: GenerateConfig) -> GenRequest:
        messages = build_messages(problem.question, len(problem.images), prompt=cfg.prompt, system=cfg.system)
        return cls(messages=messages, images=list(problem.images), id=problem.id, sample=sample)

    def settings(self, cfg: GenerateConfig) -> GenerateConfig:
        return self.cfg or cfg

    def resolved_seed(self, cfg: GenerateConfig) -> int:
        return self.seed if self.seed is not None else sample_seed(self.settings(cfg).seed, self.id, self.sample)


@dataclass
class GenOutput:
    """One finished completion. ``text`` is the raw output with the thought markers, without the stop token."""

    text: str
    finish_reason: str  # "stop" or "length"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    thought_tokens: int | None = None  # tokens inside the thought (None when the backend cannot tell)
    seed: int | None = None
    budget_forced: bool = False  # the thinking budget closed the thought
    waits: int = 0  # "Wait" insertions made by budget forcing
    # Where the budget or forcing inserted text: {"kind": "wait" | "budget", "offset": character offset in text}.
    interventions: list[dict[str, Any]] = field(default_factory=list)
    token_ids: list[int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # goes to the record's ``extra`` (e.g. ``endpoint``)
