"""RL prompts: Problem records -> the dataset GRPOTrainer samples from.

A row is ``{"prompt": chat messages, "images": [PIL images], "index": i}``: the messages are built by
`virgo.prompts.build_messages` (image placeholders first, then the prompt prefix and the question: what SFT trained
on and what `virgo generate` sends), ``images`` is empty for a text-only problem, and ``index`` points the rewards
at ``problems[i]``. The Arrow table holds only the index; prompts and images are made when a row is drawn (a
``with_transform``), so images are decoded lazily, through `virgo.modeling.images.open_image` (which refuses
decompression bombs), never stored twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from virgo.modeling.images import open_image
from virgo.prompts import build_messages
from virgo.records import Problem, RecordError, read_all


@dataclass
class ProblemSet:
    """The problems of a run and what was left out (problems the grading profile cannot grade)."""

    problems: list[Problem]
    excluded: list[tuple[str, str]]  # (id, reason)

    def describe(self) -> str:
        visual = sum(1 for p in self.problems if p.images)
        line = (f"{len(self.problems)} problems ({visual} visual, {len(self.problems) - visual} text-only)")
        if self.excluded:
            line += f"; {len(self.excluded)} left out: the grading profile cannot grade them (first: " \
                    f"{self.excluded[0][0]}: {self.excluded[0][1]})"
        return line


def read_problems(paths: Iterable[str | Path], *, profile, max_samples: int | None = None) -> ProblemSet:
    """Every Problem of every file; any bad line is an error naming file, line and field (no silent skips)."""
    from virgo.grade import excluded_reason

    problems = read_all(paths, Problem, "problem")
    if max_samples:
        problems = problems[:max_samples]
    kept, excluded = [], []
    for p in problems:
        reason = excluded_reason(p, profile)
        if reason is None:
            kept.append(p)
        else:
            excluded.append((p.id, reason))
    if not kept:
        raise RecordError("no problem left to train on" + (f" ({len(excluded)} cannot be graded)" if excluded else ""))
    return ProblemSet(kept, excluded)


class _Rows:
    """The transform that turns a batch of row indices into prompts and images (picklable: a plain class)."""

    def __init__(self, problems: Sequence[Problem], prompt: str, system: str | None):
        self.problems, self.prompt, self.system = problems, prompt, system

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        rows = [self.problems[i] for i in batch["index"]]
        return {
            "prompt": [build_messages(p.question, len(p.images), prompt=self.prompt, system=self.system)
                       for p in rows],
            "images": [[open_image(src) for src in p.images] for p in rows],
            "index": list(batch["index"]),
        }


def build_dataset(problems: Sequence[Problem], *, prompt: str, system: str | None):
    """The ``datasets.Dataset`` GRPOTrainer draws prompts from (``index`` stored, the rest made per draw)."""
    from datasets import Dataset

    return Dataset.from_dict({"index": list(range(len(problems)))}).with_transform(_Rows(problems, prompt, system))
