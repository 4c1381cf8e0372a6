"""Decoding settings: one dataclass shared by every backend, the CLI and the server."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

from virgo.prompts import DEFAULT_CHAT_TEMPLATE, load_chat_template

# `virgo chat` departs from the paper's decoding on purpose: a person waits for each streamed answer (2,048
# tokens, not 8,192), and a conversation wants no "\boxed{}" instruction on every turn. `virgo chat
# --max-new-tokens 8192 --prompt think-boxed` decodes as the paper does.
CHAT_MAX_NEW_TOKENS = 2048
CHAT_PROMPT = "plain"


@dataclass
class GenerateConfig:
    """How to generate. Defaults are the paper's: greedy, repetition penalty 1.05, up to 8,192 new tokens."""

    max_new_tokens: int = 8192
    temperature: float = 0.0  # 0 = greedy; > 0 samples (with top_p)
    top_p: float = 1.0
    repetition_penalty: float = 1.05
    n: int = 1  # samples per problem
    seed: int = 0  # base seed; each (problem, sample) draws from its own seed derived from it
    prompt: str = "think-boxed"  # prompt prefix by name (templates/prompts) or path
    system: str | None = None  # system prompt; None = the chat template's default
    chat_template: str = DEFAULT_CHAT_TEMPLATE  # by name (templates/chat) or path to a .jinja; as in training
    thinking_budget: int | None = None  # cap on thought tokens: at the cap <|end_of_thought|> is forced
    force_wait: int = 0  # s1-style budget forcing: suppress an early end of thought, append "Wait", up to k times
    batch_size: int = 8  # rows decoded together (transformers backend)
    dtype: str = "float32"  # weights dtype when a backend loads a model from a path

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        problems = []
        if self.max_new_tokens < 1:
            problems.append(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            problems.append(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            problems.append(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if self.n < 1:
            problems.append(f"n must be >= 1, got {self.n}")
        if self.thinking_budget is not None and self.thinking_budget < 0:
            problems.append(f"thinking_budget must be >= 0, got {self.thinking_budget}")
        if self.force_wait < 0:
            problems.append(f"force_wait must be >= 0, got {self.force_wait}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        try:
            load_chat_template(self.chat_template)  # cached: cheap on every replace()
        except ValueError as e:
            problems.append(str(e))
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def replace(self, **changes: Any) -> GenerateConfig:
        return dataclasses.replace(self, **changes)

    def settings(self) -> dict[str, Any]:
        """The decoding settings a generation record carries (what determines its text)."""
        return {
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "repetition_penalty": self.repetition_penalty,
            "prompt": self.prompt,
            "system": self.system,
            "chat_template": self.chat_template,
            "thinking_budget": self.thinking_budget,
            "force_wait": self.force_wait,
        }


def sample_seed(seed: int, problem_id: str, sample: int) -> int:
    """A seed per (problem, sample): results do not depend on batch composition, order or resumption."""
    digest = hashlib.sha256(f"{seed}\0{problem_id}\0{sample}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)
