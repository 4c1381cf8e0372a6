"""A generation: one sampled model output for one problem."""

from __future__ import annotations

import dataclasses
from typing import Any

from virgo.records.base import Record, RecordError

FINISH_REASONS = ("stop", "length")


@dataclasses.dataclass
class Generation(Record):
    id: str  # the problem's id
    sample: int  # 0..n-1 for n samples per problem
    text: str  # the full raw output, markers included
    finish_reason: str  # "stop" (end of turn / stop string) or "length" (token limit)
    thought: str | None = None
    solution: str | None = None
    status: str | None = None  # thought.Status value of `text`
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    thought_tokens: int | None = None
    model: str | None = None
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)  # decoding settings, budget, seed, ...
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int]:
        return (self.id, self.sample)

    def validate(self) -> None:
        if self.finish_reason not in FINISH_REASONS:
            raise RecordError(f"must be one of {FINISH_REASONS}, got {self.finish_reason!r}", field="finish_reason")
        if self.sample < 0:
            raise RecordError("must be >= 0", field="sample")
