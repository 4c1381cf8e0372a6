"""GRPO's rewards: accuracy from the grader, format, and an optional thinking-budget term.

Each is a named function with TRL's reward signature (``f(prompts, completions, completion_ids, **columns) ->
list[float]``), so ``GRPOTrainer`` logs each one separately (``rewards/accuracy/mean``, ``rewards/format/std`` ...).
They read the completion from its token ids, not from TRL's decoded ``completions``: TRL decodes with
``skip_special_tokens=True``, which deletes thought markers a tokenizer holds as special tokens, and the token ids
also say how the completion ended. A completion whose last id is an end-of-turn (or pad) token stopped on its own
(``finish_reason="stop"``); any other stopped at ``max_completion_length`` (``"length"``): the rule TRL uses for its
own ``clipped_ratio``, and the rule `virgo generate` records in every Generation.

* ``accuracy``: 1 when `virgo.grade` grades the completion ``correct``, else 0. The grading goes through
  ``grade_many``, i.e. worker processes with a hard per-item time limit (and the optional LLM judge), with the run's
  `GradeConfig`: the reward and `virgo eval` cannot disagree, and a hostile completion cannot hang the trainer. A
  completion cut at the token limit, a thought that never closed, or a box cut open earns 0. The pool of workers
  is started once and kept for the run (a worker killed at the time limit is replaced), not started per step.
* ``format``: 1 when the model stopped on its own, the thought closed, the solution (or, for ``<think>`` models,
  the text after the thought) is complete and holds exactly one closed ``\\boxed{}``; else 0.
* ``length`` (only with ``thinking_budget``): 0 while the thought is at most ``budget - margin`` tokens, falling
  linearly to -1 at the budget, -1 beyond (DAPO's soft overlong penalty, applied to thought tokens).

Besides the rewards, the batch's accuracy, truncation rate, format rate and mean thought tokens are logged as
metrics (``log_metric``, which TRL averages over processes and logging steps).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

from virgo.boxed import scan_boxes
from virgo.grade import GradeConfig, Profile
from virgo.records import Generation, Grade, Problem
from virgo.thought import ParsedResponse, Status, ThoughtFormat, parse_response

REWARD_NAMES = ("accuracy", "format", "length")


@dataclass(frozen=True)
class Completion:
    """One sampled completion as the rewards see it."""

    text: str  # decoded with special tokens kept, without the final end-of-turn token
    finish_reason: str  # "stop" | "length"
    parsed: ParsedResponse
    thought_tokens: int


def finish_reason(ids: Sequence[int], stop_ids: Sequence[int]) -> str:
    return "stop" if ids and ids[-1] in stop_ids else "length"


def decode_completion(ids: Sequence[int], tokenizer, stop_ids: Sequence[int],
                      formats: Sequence[ThoughtFormat]) -> Completion:
    reason = finish_reason(ids, stop_ids)
    body = list(ids)
    while body and body[-1] in stop_ids:
        body.pop()
    text = tokenizer.decode(body, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    parsed = parse_response(text, formats)
    thought = len(tokenizer(parsed.thought, add_special_tokens=False)["input_ids"]) if parsed.thought else 0
    return Completion(text, reason, parsed, thought)


def format_ok(c: Completion) -> bool:
    """Stopped on its own, thought closed, solution complete with exactly one closed box in it."""
    if c.finish_reason != "stop" or c.parsed.status is not Status.COMPLETE or c.parsed.solution is None:
        return False
    spans, unclosed = scan_boxes(c.parsed.solution)
    return len(spans) == 1 and unclosed is None


def length_penalty(thought_tokens: int, budget: int, margin: int = 0) -> float:
    """0 up to ``budget - margin`` thought tokens, then linear down to -1 at ``budget``; -1 beyond."""
    start = budget - margin
    if thought_tokens <= start:
        return 0.0
    if thought_tokens >= budget or margin == 0:
        return -1.0
    return -(thought_tokens - start) / margin


class Rewards:
    """The reward functions of one run. ``problems[i]`` is the problem of dataset row ``i`` (the ``index`` column
    the dataset carries); the grader's thought layouts come from ``grade``'s profile."""

    def __init__(self, problems: Sequence[Problem], tokenizer, stop_ids: Sequence[int], grade: GradeConfig, *,
                 weights: dict[str, float], thinking_budget: int | None = None, budget_margin: int = 0,
                 profile: Profile | None = None):
        self.problems = problems
        self.tokenizer = tokenizer
        self.stop_ids = tuple(stop_ids)
        self.grade = grade
        self.profile = profile if profile is not None else grade.profile_obj()  # given: a case table's variant
        self.formats = self.profile.thought_formats
        self.weights_by_name = weights
        self.thinking_budget = thinking_budget
        self.budget_margin = budget_margin
        self._judge = grade.judge()
        self._pool = None  # a virgo.grade.GradingPool, started at the first batch
        self._memo: tuple[Any, list[Completion]] | None = None

    @classmethod
    def for_config(cls, cfg, problems: Sequence[Problem], tokenizer, stop_ids: Sequence[int]) -> Rewards:
        r = cfg.reward
        return cls(problems, tokenizer, stop_ids, cfg.grade, thinking_budget=r.thinking_budget,
                   budget_margin=r.budget_margin,
                   weights={"accuracy": r.accuracy_weight, "format": r.format_weight, "length": r.length_weight})

    # --- what the trainer is given
    def functions(self) -> list:
        """The reward functions, in the order of `weights`: accuracy, format, and length when a budget is set."""
        funcs = [self.accuracy, self.format]
        if self.thinking_budget is not None:
            funcs.append(self.length)
        return funcs

    def weights(self) -> list[float]:
        return [self.weights_by_name[f.__name__] for f in self.functions()]

    def close(self) -> None:
        """Stop the grading workers and the judge's client."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._judge is not None:
            self._judge.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the shared view of a batch
    def completions(self, completion_ids: Sequence[Sequence[int]]) -> list[Completion]:
        """Decoded completions, computed once per batch (TRL calls every reward function on the same ids)."""
        key = tuple(map(tuple, completion_ids))
        if self._memo is None or self._memo[0] != key:
            self._memo = (key, [decode_completion(ids, self.tokenizer, self.stop_ids, self.formats)
                                for ids in completion_ids])
        return self._memo[1]

    # --- the rewards (TRL's signature; the method name is the name TRL logs)
    def accuracy(self, prompts, completions, completion_ids, index, log_metric=None, **_) -> list[float]:
        done = self.completions(completion_ids)
        grades = self.grade_completions([self.problems[i] for i in index], done)
        correct = [1.0 if g.verdict == "correct" else 0.0 for g in grades]
        if log_metric is not None and correct:
            log_metric("accuracy", sum(correct) / len(correct))
            log_metric("truncated", sum(g.verdict == "truncated" for g in grades) / len(grades))
        return correct

    def format(self, prompts, completions, completion_ids, log_metric=None, **_) -> list[float]:
        done = self.completions(completion_ids)
        ok = [1.0 if format_ok(c) else 0.0 for c in done]
        if log_metric is not None and ok:
            log_metric("format_rate", sum(ok) / len(ok))
            log_metric("thought_tokens", sum(c.thought_tokens for c in done) / len(done))
        return ok

    def length(self, prompts, completions, completion_ids, **_) -> list[float]:
        assert self.thinking_budget is not None
        return [length_penalty(c.thought_tokens, self.thinking_budget, self.budget_margin)
                for c in self.completions(completion_ids)]

    def grade_completions(self, problems: Sequence[Problem], done: Sequence[Completion]) -> list[Grade]:
        """The grader's verdicts, from worker processes under the configured time limit (as `virgo grade`); the
        pool lives as long as this object (``close``), so a step pays no worker start-up."""
        from virgo.grade import GradingPool, Job, grade_text

        if self.grade.workers == 0:  # in this process, no time limit (debugging), as grade_many does
            grades = [grade_text(p, c.text, finish_reason=c.finish_reason, profile=self.profile, sample=k)
                      for k, (p, c) in enumerate(zip(problems, done, strict=True))]
        else:
            if self._pool is None:
                self._pool = GradingPool(self.grade.workers, timeout=self.grade.grade_timeout).__enter__()
            jobs = [Job(p, c.text, c.finish_reason, self.profile, k)
                    for k, (p, c) in enumerate(zip(problems, done, strict=True))]
            grades = list(self._pool.imap(jobs))
        if self._judge is not None:
            items = [(p, Generation(id=p.id, sample=k, text=c.text, finish_reason=c.finish_reason))
                     for k, (p, c) in enumerate(zip(problems, done, strict=True))]
            grades = self._judge.review(items, grades)
        return grades
