"""Format checks on teacher rollouts: the long-thought shape, no repetition loops, length bounds.

A rollout that the grader marks correct can still be bad training data: a thought that never closes, a
solution section missing, a generation stuck in a loop that happened to box the right answer, a chat-template
control token inside the text (``<|image_pad|>``), or a thought far too short (a direct answer dressed up) or too
long for the training context. Each check returns a short reason code, so the dataset stats can say how many
rollouts each rule rejected.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from virgo.prompts import CONTROL_TOKENS
from virgo.records import Generation
from virgo.thought import Status, parse_response

UNITS = ("chars", "tokens")


@dataclass(frozen=True)
class FormatSpec:
    """What a usable rollout must satisfy. ``None`` disables a bound."""

    require_complete: bool = True  # thought closed and solution opened and closed (thought.Status.COMPLETE)
    unit: str = "chars"  # unit of the length bounds: "chars", or "tokens" (the rollout's thought_tokens)
    min_thought: int | None = None
    max_thought: int | None = None
    # Repetition loops. A word n-gram that has occurred before counts as repeated; a loop that restates a
    # sentence or a paragraph again and again drives this share up, while a real long thought (which does
    # revisit "Wait, let me check ..." phrases) stays well under it.
    ngram: int = 10
    max_ngram_repeat: float | None = 0.3
    # A line of at least min_line_chars characters repeated more than max_line_repeats times is a loop too
    # (catches loops of short steps that the n-gram share dilutes over a long text).
    max_line_repeats: int | None = 5
    min_line_chars: int = 16

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, got {self.unit!r}")
        if self.ngram < 1:
            raise ValueError("ngram must be >= 1")
        if self.max_ngram_repeat is not None and not 0.0 <= self.max_ngram_repeat <= 1.0:
            raise ValueError("max_ngram_repeat is a share in [0, 1]")
        if self.min_thought is not None and self.max_thought is not None and self.min_thought > self.max_thought:
            raise ValueError(f"min_thought {self.min_thought} > max_thought {self.max_thought}")


_WORD = re.compile(r"\S+")


def repeated_ngram_share(text: str, n: int = 10) -> float:
    """Share of the word n-grams of ``text`` that already occurred earlier in it (0 = no repeats)."""
    words = _WORD.findall(text)
    total = len(words) - n + 1
    if total <= 1:
        return 0.0
    seen: set[tuple[str, ...]] = set()
    repeats = 0
    for i in range(total):
        g = tuple(words[i:i + n])
        if g in seen:
            repeats += 1
        else:
            seen.add(g)
    return repeats / total


def most_repeated_line(text: str, min_chars: int = 16) -> tuple[str | None, int]:
    """The most frequent stripped line of at least ``min_chars`` characters, and its count."""
    counts = Counter(s for s in (line.strip() for line in text.splitlines()) if len(s) >= min_chars)
    if not counts:
        return None, 0
    line, k = counts.most_common(1)[0]
    return line, k


def repetition_reason(text: str, spec: FormatSpec) -> str | None:
    """``repetition_ngram`` / ``repetition_line`` when ``text`` looks like a loop, else None."""
    if spec.max_ngram_repeat is not None and repeated_ngram_share(text, spec.ngram) > spec.max_ngram_repeat:
        return "repetition_ngram"
    if spec.max_line_repeats is not None and most_repeated_line(text, spec.min_line_chars)[1] > spec.max_line_repeats:
        return "repetition_line"
    return None


def thought_length(gen: Generation, thought: str, unit: str,
                   count_tokens: Callable[[str], int] | None = None) -> int:
    """Length of the thought in ``unit``: characters, or tokens (the generation's count, else ``count_tokens``)."""
    if unit == "chars":
        return len(thought)
    if gen.thought_tokens is not None:
        return gen.thought_tokens
    if count_tokens is None:
        raise ValueError(f"rollout ({gen.id}, {gen.sample}) has no thought_tokens; give a tokenizer or use chars")
    return count_tokens(thought)


def format_reasons(gen: Generation, spec: FormatSpec = FormatSpec(),
                   count_tokens: Callable[[str], int] | None = None) -> list[str]:
    """Every format rule ``gen`` breaks, as reason codes; an empty list means the rollout is usable."""
    p = parse_response(gen.text)
    reasons: list[str] = []
    # Without both sections there is no (thought, solution) pair to train on, whatever the setting; with
    # require_complete off, an unclosed solution (the token limit hit after the answer) is accepted.
    if p.status is not Status.COMPLETE and (spec.require_complete or p.thought is None or p.solution is None):
        return [f"status_{p.status.value}"]
    thought, solution = (p.thought or "").strip(), (p.solution or "").strip()
    if not thought:
        reasons.append("empty_thought")
    if not solution:
        reasons.append("empty_solution")
    if any(t in thought or t in solution for t in CONTROL_TOKENS):
        reasons.append("control_token")
    rep = repetition_reason(thought + "\n" + solution, spec)
    if rep:
        reasons.append(rep)
    if spec.min_thought is not None or spec.max_thought is not None:
        n = thought_length(gen, thought, spec.unit, count_tokens)
        if spec.min_thought is not None and n < spec.min_thought:
            reasons.append("thought_too_short")
        if spec.max_thought is not None and n > spec.max_thought:
            reasons.append("thought_too_long")
    return reasons
