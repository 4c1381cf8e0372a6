"""Tokens per second in the training log: the number to compare with a padded run, another packing, another tool.

Every training log event gets ``num_input_tokens_seen`` (the input tokens the model processed so far, padding
excluded, over all processes; transformers' own field of ``TrainerState``, so it is saved in checkpoints and a
resumed run counts on) and ``tokens_per_s`` (the tokens since the previous training log event over the wall time
from the first step after it, so an evaluation or a checkpoint save in between does not count as training); the
final event gets ``train_tokens_per_second`` (this session's tokens over ``train_runtime``). The log line reads
``..., 13,240 tok/s``.

Why not transformers' ``include_num_input_tokens_seen``: it gathers the count over processes on every step (a
device sync and a collective per step), and on a packed row, which has no attention mask and no padding, it warns
on every step that it cannot find the padding (the processor has no ``pad_token_id``). Here the count stays a
local number (a tensor on the device for padded batches, so no sync) until a training log event, where every
process already takes part in gathering the loss, and is summed over processes there. When a user does set
``include_num_input_tokens_seen``, the Trainer's count is left alone (the rates still come from this count).

`virgo rl` logs the same two rates from TRL's own count instead (``num_tokens``: the prompt and completion tokens
of every generated sample, over all processes), so there a rate covers a whole GRPO step: generation, scoring and
the update (`virgo.rl.trainer.GRPOTrainer.log`).
"""

from __future__ import annotations

import time
from typing import Any


class TokenMeter:
    """Counts the non-padding input tokens of each micro-batch and turns them into log fields."""

    def __init__(self) -> None:
        # this process's tokens since the last log event: a number, or a device tensor once a padded batch's
        # attention-mask sum is added (read at the next log event, so no sync per step)
        self.local: Any = 0
        self.began: float | None = None  # when the first micro-batch after the previous training log event began
        self.session = 0  # tokens over all processes in this session, summed at each training log event

    def mark(self) -> None:
        """A training step begins: the first after a log event starts the next interval."""
        if self.began is None:
            self.began = time.perf_counter()

    def count(self, inputs: dict[str, Any], tokens: float | None = None) -> None:
        """Add one micro-batch (called as each training step begins); ``tokens``: its count when the batch cannot
        tell (this rank's share of a row split by sequence parallelism)."""
        self.mark()
        mask = inputs.get("attention_mask")
        if tokens is not None:
            self.local = self.local + tokens
        elif mask is not None:
            self.local = self.local + mask.sum()
        elif (ids := inputs.get("input_ids")) is not None:
            self.local = self.local + ids.numel()  # a packed row: every position is a sample's token

    def take_local(self) -> Any:
        """This process's tokens since the last call (a number or a 0-d tensor), and reset."""
        got, self.local = self.local, 0
        return got

    def fields(self, logs: dict[str, Any], tokens: int, seen: int) -> dict[str, Any]:
        """Log fields for a training log event: ``tokens`` are those since the previous one over all processes,
        ``seen`` the run's count so far."""
        self.session += tokens
        out: dict[str, Any] = {"num_input_tokens_seen": seen}
        if "train_runtime" in logs:  # the final event: the session's rate
            out["train_tokens_per_second"] = round(self.session / max(logs["train_runtime"], 1e-9), 1)
        elif self.began is not None:
            out["tokens_per_s"] = round(tokens / max(time.perf_counter() - self.began, 1e-9), 1)
        # The next interval begins with the next micro-batch: an evaluation or a checkpoint save, which the Trainer
        # runs right after this event, is not training time.
        self.began = None
        return out


def is_training_event(logs: dict[str, Any]) -> bool:
    """A log event every process emits at the same step (the periodic training log, or the end of training):
    the only ones where summing over processes is safe. Evaluation events may come from a subset."""
    return "loss" in logs or "train_runtime" in logs
