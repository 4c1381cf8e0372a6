"""A long-thought training example: a question and its (thought, solution) response."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from virgo.records.base import Record, RecordError
from virgo.thought import parse_response, render_response


@dataclasses.dataclass
class LongThoughtExample(Record):
    id: str
    question: str
    thought: str
    solution: str
    images: list[str] = dataclasses.field(default_factory=list)
    answer: str | None = None  # the final answer (e.g. the boxed content), if known
    domain: str | None = None  # math, science, code, puzzle, visual, ...
    source: str | None = None  # where it came from: dataset name, teacher model, ...
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    IMAGE_FIELDS: ClassVar[tuple[str, ...]] = ("images",)

    def validate(self) -> None:
        self.require_nonempty("id", "question", "thought", "solution")

    @property
    def response(self) -> str:
        """The assistant turn in the long-thought format."""
        return render_response(self.thought, self.solution)

    @classmethod
    def from_response(cls, *, id: str, question: str, response: str, **kw: Any) -> LongThoughtExample:
        """Build from a rendered response; raises RecordError unless it is a complete long thought."""
        p = parse_response(response)
        if p.status.value != "complete":
            raise RecordError(f"response is not a complete long thought ({p.status.value})", field="response")
        if kw.get("answer") is None and p.boxed is not None:
            kw["answer"] = p.boxed
        ex = cls(id=id, question=question, thought=p.thought or "", solution=p.solution or "", **kw)
        ex.validate()
        return ex


@dataclasses.dataclass
class SFTExample(Record):
    """A generic supervised example: a question (with images) and any assistant response.

    Direct answers, captions and other non-long-thought targets (e.g. the demo's base-model skills) use
    this; long-thought data uses LongThoughtExample, whose ``response`` renders the markers.
    """

    id: str
    question: str
    response: str
    images: list[str] = dataclasses.field(default_factory=list)
    domain: str | None = None
    source: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    IMAGE_FIELDS: ClassVar[tuple[str, ...]] = ("images",)

    def validate(self) -> None:
        self.require_nonempty("id", "response")


def example_from_dict(data: Any, *, base_dir: Any = None) -> LongThoughtExample | SFTExample:
    """A training record of either kind: long-thought (thought + solution) or generic (response)."""
    if isinstance(data, dict) and "response" in data and "thought" not in data:
        return SFTExample.from_dict(data, base_dir=base_dir)
    return LongThoughtExample.from_dict(data, base_dir=base_dir)
