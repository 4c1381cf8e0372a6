"""Trainer callbacks: the JSONL training log and an index of checkpoints by epoch.

Both write only on the main process and only when the Trainer logs or saves, so they add no per-step I/O.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback

LOG_NAME = "train_log.jsonl"
CHECKPOINTS_NAME = "checkpoints.jsonl"


def _append(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


class JsonlLogCallback(TrainerCallback):
    """One JSON record per Trainer log event: ``step``, ``epoch``, ``loss``, ``learning_rate``, ``grad_norm``..."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.start = time.time()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4),
                  "elapsed_s": round(time.time() - self.start, 3)}
        record.update({k: v for k, v in logs.items() if k != "epoch"})
        _append(self.path, record)


class CheckpointIndexCallback(TrainerCallback):
    """Appends ``{"step", "epoch", "checkpoint"}`` per save, so "the epoch-5 checkpoint" is a lookup, not a guess."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            _append(self.path, {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4),
                                "checkpoint": f"checkpoint-{state.global_step}"})


def truncate_log(path: str | Path, last_step: int) -> int:
    """Keep log records up to ``last_step`` (used on resume: later records belong to the lost part of the run)."""
    path = Path(path)
    if not path.exists():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line torn by the interruption
            dropped += 1
            continue
        if rec.get("step", 0) <= last_step:
            kept.append(line)
        else:
            dropped += 1
    path.write_text("".join(x + "\n" for x in kept), encoding="utf-8")
    return dropped


def read_log(path: str | Path) -> list[dict]:
    return [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines() if x.strip()]
