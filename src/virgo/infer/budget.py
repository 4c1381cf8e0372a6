"""Thinking-budget control: cap the thought, or extend it s1-style, token by token during decoding.

Two controls act on the thought (the text before ``<|end_of_thought|>``):

- **budget cap**: when the thought has ``thinking_budget`` tokens and is still open, the closing sequence
  ``<|end_of_thought|>\\n\\n<|begin_of_solution|>`` is forced and the model goes on to write its solution;
- **budget forcing** (s1, arXiv 2501.19393): when the model ends its thought, the end marker is taken back and
  "Wait" is appended instead, up to ``force_wait`` times, so the model keeps thinking.

The thought counts as open from the first generated token (as `virgo.thought.parse_response` treats an implicit
opening); an opening ``<|begin_of_thought|>`` restarts the count, so the marker itself is not a thought token.

Markers are matched as token sequences, so checkpoints whose tokenizer splits a marker into several tokens work
too: when a multi-token end marker is taken back, the decoder masks the marker tokens it already fed to the
model (see `virgo.infer.generation`), exactly as if they had never been generated.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from virgo.thought import BEGIN_SOLUTION, BEGIN_THOUGHT, END_THOUGHT

WAIT_TEXT = "Wait"
CLOSE_TEXT = f"{END_THOUGHT}\n\n{BEGIN_SOLUTION}"  # the layout of virgo.thought.render_response


@dataclass(frozen=True)
class Markers:
    """Token ids of the sequences the controls watch for and force."""

    begin_thought: tuple[int, ...]
    end_thought: tuple[int, ...]
    close: tuple[int, ...]
    wait: tuple[int, ...]

    @classmethod
    def from_tokenizer(cls, tokenizer) -> Markers:
        def ids(text: str) -> tuple[int, ...]:
            return tuple(tokenizer(text, add_special_tokens=False)["input_ids"])

        return cls(ids(BEGIN_THOUGHT), ids(END_THOUGHT), ids(CLOSE_TEXT), ids(WAIT_TEXT))


def _ends_with(seq: list[int], tail: tuple[int, ...]) -> bool:
    n = len(tail)
    return n > 0 and len(seq) >= n and tuple(seq[-n:]) == tail


@dataclass
class Accepted:
    """What to feed the model after `ThoughtControl.accept`: ``token``, after masking the last ``rollback``."""

    token: int
    rollback: int = 0


class ThoughtControl:
    """The thought state of one row: counts thought tokens, forces the close, swaps an early end for "Wait"."""

    def __init__(self, markers: Markers, budget: int | None = None, force_wait: int = 0):
        self.m = markers
        self.budget = budget
        self.max_waits = force_wait
        self.open = True
        self.count = 0  # thought tokens so far
        self.waits = 0
        self.budget_forced = False
        # Where the controls acted: ("wait" | "budget", index into the row's tokens of the first inserted token),
        # so a reader of the output (`virgo view`) can mark the exact point instead of guessing from the text.
        self.interventions: list[tuple[str, int]] = []
        self._close_pending = False
        self._queue: deque[int] = deque()

    @property
    def active(self) -> bool:
        """Whether this row needs watching at all (no budget and no forcing: the model decodes freely)."""
        return self.budget is not None or self.max_waits > 0 or bool(self._queue)

    @property
    def thought_tokens(self) -> int | None:
        return self.count

    def forced(self) -> int | None:
        """The next token to emit regardless of the model's choice, or None to let the model choose."""
        if not self._queue and self.open and self.budget is not None and self.count >= self.budget:
            self._queue.extend(self.m.close)
            self.budget_forced = True
            self._close_pending = True
        return self._queue.popleft() if self._queue else None

    def holdback(self, gen: list[int]) -> int:
        """How many trailing tokens may still be taken back (a partial end marker while forcing can swap it)."""
        if not self.open or self.waits >= self.max_waits:
            return 0
        tail = self.m.end_thought
        for k in range(min(len(tail) - 1, len(gen)), 0, -1):
            if tuple(gen[-k:]) == tail[:k]:
                return k
        return 0

    def accept(self, gen: list[int], token: int, forced: bool) -> Accepted:
        """Append ``token`` (or its replacement) to the row's live tokens ``gen``; says what to feed next."""
        if forced and self._close_pending:
            self.interventions.append(("budget", len(gen)))  # the forced close starts here
            self._close_pending = False
        if not self.open:
            gen.append(token)
            return Accepted(token)
        gen.append(token)
        k = len(self.m.end_thought)
        if _ends_with(gen, self.m.end_thought):
            if not forced and self.waits < self.max_waits and self.m.wait:
                # Take the end marker back (its first k-1 tokens were already fed) and think on.
                del gen[-k:]
                self.count -= k - 1
                self.waits += 1
                self.interventions.append(("wait", len(gen)))
                self._queue.extend(self.m.wait)
                replacement = self._queue.popleft()
                gen.append(replacement)
                self.count += 1
                return Accepted(replacement, rollback=k - 1)
            self.open = False
            self.count -= k - 1  # the marker's earlier tokens were counted as thought
            return Accepted(token)
        if _ends_with(gen, self.m.begin_thought) and len(gen) == len(self.m.begin_thought):
            self.count = 0  # the thought starts after its opening marker
            return Accepted(token)
        self.count += 1
        return Accepted(token)
