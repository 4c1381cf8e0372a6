"""Tokens per second in the training log: the number to compare with a padded run, another packing, another tool.

Every training log event gets ``num_input_tokens_seen`` (the input tokens the model processed so far, padding
excluded, over all processes; transformers' own field of ``TrainerState``, so it is saved in checkpoints and a
resumed run counts on) and ``tokens_per_s`` (those tokens over the wall time since the previous training log
event, or since the first step began); the final event gets ``train_tokens_per_second`` (the run's tokens over
``train_runtime``). The log line reads ``..., 13,240 tok/s``.

Why not transformers' ``include_num_input_tokens_seen``: it gathers the count over processes on every step (a
device sync and a collective per step), and on a packed row, which has no attention mask and no padding, it warns
on every step that it cannot find the padding (the processor has no ``pad_token_id``). Here the count stays a
local number (a tensor on the device for padded batches, so no sync) until a training log event, where every
process already takes part in gathering the loss, and is summed over processes there. When a user does set
``include_num_input_tokens_seen``, the Trainer's count is left alone and only the rates are added.
"""

from __future__ import annotations

import time
from typing import Any


class TokenMeter:
    """Counts the non-padding input tokens of each micro-batch and turns them into log fields."""

    def __init__(self) -> None:
        self.local = 0  # tokens of packed rows and unmasked batches: plain numbers, known without a sync
        self.local_masked: Any = 0  # attention-mask sums of padded batches: a device tensor until the next log
        self.mark: tuple[float, int] | None = None  # (time, tokens so far) at the previous training log event
        self.start: tuple[float, int] | None = None  # the same at the first step of this session

    def count(self, inputs: dict[str, Any], seen_so_far: int) -> None:
        """Add one micro-batch (called before each training step)."""
        if self.mark is None:
            self.mark = self.start = (time.perf_counter(), seen_so_far)
        mask = inputs.get("attention_mask")
        if mask is not None:
            self.local_masked = self.local_masked + mask.sum()
        elif (ids := inputs.get("input_ids")) is not None:
            self.local += ids.numel()  # a packed row: every position is a sample's token

    def take_local(self) -> Any:
        """This process's tokens since the last call (a number or a 0-d tensor), and reset."""
        got = self.local + self.local_masked
        self.local, self.local_masked = 0, 0
        return got

    def fields(self, logs: dict[str, Any], seen: int) -> dict[str, Any]:
        """Log fields for a training log event, ``seen`` being the tokens so far over all processes."""
        if self.mark is None:
            return {}
        now = time.perf_counter()
        out: dict[str, Any] = {"num_input_tokens_seen": seen}
        if "train_runtime" in logs and self.start is not None:  # the final event: the whole session's rate
            out["train_tokens_per_second"] = round((seen - self.start[1]) / max(logs["train_runtime"], 1e-9), 1)
        else:
            out["tokens_per_s"] = round((seen - self.mark[1]) / max(now - self.mark[0], 1e-9), 1)
        self.mark = (now, seen)
        return out


def is_training_event(logs: dict[str, Any]) -> bool:
    """A log event every process emits at the same step (the periodic training log, or the end of training):
    the only ones where summing over processes is safe. Evaluation events may come from a subset."""
    return "loss" in logs or "train_runtime" in logs
