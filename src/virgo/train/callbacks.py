"""Trainer callbacks: the JSONL training log and an index of checkpoints by epoch (with their dev metrics).

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


# Evaluation numbers that describe the run, not the model.
EVAL_RUNTIME_KEYS = {"eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "eval_model_preparation_time"}


def eval_metrics(logs: dict) -> dict[str, float]:
    """The model's evaluation metrics in a log event (``eval_loss``, ``eval_accuracy`` ...)."""
    return {k: v for k, v in logs.items()
            if k.startswith("eval_") and k not in EVAL_RUNTIME_KEYS and isinstance(v, (int, float))}


class CheckpointIndexCallback(TrainerCallback):
    """Appends ``{"step", "epoch", "checkpoint"}`` per save, so "the epoch-5 checkpoint" is a lookup, not a guess;
    with evaluations, also the ``metrics`` evaluated at that step and the best checkpoint so far (``best``, by
    ``metric_for_best_model``)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.step = -1
        self.metrics: dict[str, float] = {}  # evaluated at self.step (the dev loss and accuracy log separately)

    def on_log(self, args, state, control, logs=None, **kwargs):
        found = eval_metrics(logs or {})
        if found:
            if state.global_step != self.step:
                self.step, self.metrics = state.global_step, {}
            self.metrics.update(found)

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        record = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4),
                  "checkpoint": f"checkpoint-{state.global_step}"}
        if self.step == state.global_step and self.metrics:
            record["metrics"] = dict(self.metrics)
        if args.metric_for_best_model and state.best_global_step:
            record["best"] = f"checkpoint-{state.best_global_step}"
        _append(self.path, record)


def best_checkpoint(args, state) -> dict | None:
    """The checkpoint ``metric_for_best_model`` chose (for run_info.json); None when nothing was selected."""
    if not args.metric_for_best_model or state.best_global_step is None or state.best_metric is None:
        return None
    metric = args.metric_for_best_model
    metric = metric if metric.startswith("eval_") else f"eval_{metric}"
    epoch = next((r.get("epoch") for r in state.log_history if r.get("step") == state.best_global_step), None)
    return {"metric": metric, "greater_is_better": bool(args.greater_is_better), "value": state.best_metric,
            "step": state.best_global_step, "epoch": epoch, "checkpoint": f"checkpoint-{state.best_global_step}"}


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


def start_run_dir(out: Path, files: dict[str, str], resume: str | None) -> None:
    """A run folder's opening files (name -> text: the resolved config, run_info.json), and its logs cut back to the
    checkpoint resumed from, or cleared for a new run. Shared by `virgo train` and `virgo rl`."""
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    if resume:
        step = json.loads((Path(resume) / "trainer_state.json").read_text())["global_step"]
        for name in (LOG_NAME, CHECKPOINTS_NAME):  # what came after the checkpoint was lost
            truncate_log(out / name, step)
        say(True, f"resuming from {resume} (step {step})")
    else:
        for name in (LOG_NAME, CHECKPOINTS_NAME):
            (out / name).unlink(missing_ok=True)


def read_log(path: str | Path) -> list[dict]:
    return [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines() if x.strip()]


def say(is_main: bool, *lines: str) -> None:
    """Print lines on the main process only (a run's own messages, one per line)."""
    if is_main:
        for line in lines:
            print(line, flush=True)


def format_log_line(step: int, max_steps: int, epoch: float | None, logs: dict) -> str:
    """One readable line per Trainer log event (instead of the Trainer's raw dict)."""
    parts = [f"step {step}/{max_steps}" + (f" (epoch {epoch:.2f})" if epoch is not None else "")]
    final = "train_loss" in logs  # transformers also puts train_runtime on every event when it counts tokens
    for key, label, fmt in (("loss", "loss", ".4f"), ("eval_loss", "dev loss", ".4f"), ("learning_rate", "lr", ".2e"),
                            ("grad_norm", "grad norm", ".3g"), ("train_runtime", "took", ".1f")):
        value = logs.get(key)
        if isinstance(value, (int, float)) and (key != "train_runtime" or final):
            parts.append(f"{label} {value:{fmt}}" + (" s" if key == "train_runtime" else ""))
    rate = logs.get("train_tokens_per_second" if final else "tokens_per_s")
    if isinstance(rate, (int, float)):
        parts.append(f"{rate:,.0f} tok/s")
    for key, value in logs.items():  # metrics of a generation-based evaluation (eval_accuracy ...)
        if key.startswith("eval_") and key not in ("eval_loss", "eval_runtime", "eval_samples_per_second",
                                                   "eval_steps_per_second") and isinstance(value, (int, float)):
            parts.append(f"{key[5:]} {value:.4g}")
    return ", ".join(parts)


class LogLineCallback(TrainerCallback):
    """Prints each log event as one line in Virgo's format, on the main process only.

    The Trainer's own PrinterCallback / ProgressCallback print raw dicts ({'loss': ..., 'grad_norm': ...}), which
    flood a log file; `quiet_trainer_output` removes that printing and this callback takes its place.
    """

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        line = format_log_line(state.global_step, state.max_steps, state.epoch, logs)
        try:
            from tqdm.auto import tqdm

            tqdm.write(line)  # above an active progress bar, not through it
        except ImportError:  # pragma: no cover - tqdm comes with transformers
            print(line, flush=True)


def quiet_trainer_output(trainer) -> None:
    """Replace the Trainer's dict printing with `LogLineCallback` (the progress bar, if any, stays)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class BarOnly(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            pass  # the bar keeps counting steps; the numbers go through LogLineCallback

    trainer.remove_callback(PrinterCallback)
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(BarOnly())
    trainer.add_callback(LogLineCallback())
