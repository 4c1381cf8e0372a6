"""``Match``: the outcome of comparing an extracted answer with a gold one (shared by the comparison modules)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Match:
    correct: bool
    by: str  # the rule or engine that decided (Grade.graded_by)
    decided: bool = True  # False: the rules could not really compare them (judge candidates)
    detail: str | None = None
