"""A grade: the verdict on one generation."""

from __future__ import annotations

import dataclasses
from typing import Any

from virgo.records.base import Record, RecordError

VERDICTS = ("correct", "wrong", "no_answer", "truncated")


@dataclasses.dataclass
class Grade(Record):
    id: str
    sample: int
    verdict: str  # one of VERDICTS; never merged in summaries
    extracted: str | None  # the answer the grader extracted (None when there was none)
    graded_by: str  # the rule or engine that decided, e.g. "mc_letter", "math_verify", "numeric_tol", "judge"
    extracted_by: str | None = None  # the extraction rule, e.g. "boxed", "answer_is", "mc_letter"
    gold: str | None = None
    detail: str | None = None  # a human-readable reason, for audits
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int]:
        return (self.id, self.sample)

    @property
    def correct(self) -> bool:
        return self.verdict == "correct"

    def validate(self) -> None:
        if self.verdict not in VERDICTS:
            raise RecordError(f"must be one of {VERDICTS}, got {self.verdict!r}", field="verdict")
