"""A problem: one benchmark or training question with its gold answer."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from virgo.records.base import Record


@dataclasses.dataclass
class Problem(Record):
    id: str
    question: str
    answer: str  # gold answer as a string (LaTeX or plain); for multiple choice, the letter
    images: list[str] = dataclasses.field(default_factory=list)
    choices: list[str] | None = None  # option texts, in order A, B, C, ...
    answer_type: str | None = None  # e.g. "multiple_choice", "numeric", "expression", "interval", "free_form"
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)  # level, subject, version, tolerance, ...
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    IMAGE_FIELDS: ClassVar[tuple[str, ...]] = ("images",)

    def validate(self) -> None:
        self.require_nonempty("id", "question")
