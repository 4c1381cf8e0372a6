"""RL's console line: one per logged step, the rewards and the policy's drift instead of SFT's loss and lr.

The JSONL log and the checkpoint index are SFT's callbacks (`virgo.train.callbacks`), unchanged: every metric TRL
logs (``reward``, ``rewards/<name>/mean|std``, ``accuracy``, ``format_rate``, ``thought_tokens``, ``kl``,
``clip_ratio/region_mean``, ``completions/mean_length`` ...) goes into ``train_log.jsonl`` and TensorBoard as is.
"""

from __future__ import annotations

from transformers import TrainerCallback

from virgo.train.callbacks import LogLineCallback, quiet_trainer_output

# (log key, label, format); shown in this order when present
LINE_FIELDS = (
    ("reward", "reward", ".3f"), ("reward_std", "\u00b1", ".3f"), ("accuracy", "accuracy", ".3f"),
    ("format_rate", "format", ".3f"), ("thought_tokens", "thought tok", ".1f"),
    ("completions/mean_length", "length", ".1f"), ("kl", "kl", ".4g"), ("clip_ratio/region_mean", "clipped", ".3f"),
    ("loss", "loss", ".4g"), ("train_runtime", "took", ".1f"),
)


def format_rl_line(step: int, max_steps: int, logs: dict) -> str:
    parts = [f"step {step}/{max_steps}"]
    for key, label, fmt in LINE_FIELDS:
        value = logs.get(key)
        if isinstance(value, (int, float)):
            parts.append(f"{label} {value:{fmt}}" + (" s" if key == "train_runtime" else ""))
    rate = logs.get("train_tokens_per_second" if "train_runtime" in logs else "tokens_per_s")
    if isinstance(rate, (int, float)):  # prompt and completion tokens per second (virgo.rl.trainer)
        parts.append(f"{rate:,.0f} tok/s")
    return ", ".join(parts)


class RLLogLineCallback(TrainerCallback):
    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        line = format_rl_line(state.global_step, state.max_steps, logs)
        from tqdm.auto import tqdm

        tqdm.write(line)


def quiet_rl_output(trainer) -> None:
    """The Trainer's dict printing replaced by `RLLogLineCallback` (the progress bar, if any, stays)."""
    quiet_trainer_output(trainer)
    trainer.remove_callback(LogLineCallback)
    trainer.add_callback(RLLogLineCallback())
