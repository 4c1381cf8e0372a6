"""`virgo rl` killed with SIGKILL mid-training and run again continues from its last checkpoint, and ends with the
same model as a run that was never interrupted (weights, optimizer and RNG state all restored)."""

from __future__ import annotations

import json
import sys

import pytest
from procs import kill_after_records, run_group

from virgo.train.callbacks import read_log


def _command(out, problems) -> list[str]:
    return [sys.executable, "-m", "virgo", "rl", "--config", "tiny-cpu", "--output-dir", str(out), "--no-progress",
            "model_name_or_path=tiny:xs", f"train_files=[{problems}]", "report_to=none", "max_steps=8",
            "save_steps=2", "save_total_limit=null", "num_generations=2", "per_device_train_batch_size=4",
            "max_completion_length=12", "logging_steps=1"]


def _weights(model_dir):
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


@pytest.mark.slow
def test_sigkill_then_resume_continues_from_the_checkpoint(tmp_path):
    from virgo.rl.fixture import make_lucky_task
    from virgo.train.models import resolve_model

    resolve_model("tiny:xs")
    problems = make_lucky_task(tmp_path / "task")["problems"]
    out = tmp_path / "run"
    killed = kill_after_records(_command(out, problems), out / "checkpoints.jsonl", records=1, timeout=300)
    assert killed, "the run finished before it could be killed"
    saved = [json.loads(x)["step"] for x in (out / "checkpoints.jsonl").read_text().splitlines()]
    assert saved and not (out / "model.safetensors").exists()

    done = run_group(_command(out, problems), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads((out / "run_info.json").read_text())
    assert info["resumed_from"] and info["resumed_from"].endswith(f"checkpoint-{saved[-1]}")
    assert f"resuming from {info['resumed_from']} (step {saved[-1]})" in done.stdout
    steps = [r["step"] for r in read_log(out / "train_log.jsonl") if "loss" in r]
    assert steps == list(range(1, 9))  # each step once: what followed the checkpoint was dropped and redone
    assert json.loads((out / "checkpoint-8" / "trainer_state.json").read_text())["global_step"] == 8

    reference = tmp_path / "reference"
    ref = run_group(_command(reference, problems), timeout=600)
    assert ref.returncode == 0, ref.stderr[-3000:]
    _check_token_rates(out, done.stdout, resumed_from=json.loads(
        (out / f"checkpoint-{saved[-1]}" / "trainer_state.json").read_text())["num_input_tokens_seen"])
    _check_token_rates(reference, ref.stdout, resumed_from=0)
    a, b = _weights(out), _weights(reference)
    assert a.keys() == b.keys()
    import torch

    for name in a:
        torch.testing.assert_close(a[name], b[name], msg=name)


def _check_token_rates(out, stdout: str, resumed_from: int) -> None:
    """Every training log event has a token rate (TRL's prompt + completion count over the interval), the console
    line shows it, and the last event's session rate is this session's tokens (the count less what the checkpoint
    it resumed from had seen) over its runtime."""
    log = read_log(out / "train_log.jsonl")
    steps = [r for r in log if "loss" in r]
    assert all(r["tokens_per_s"] > 0 for r in steps), steps
    final = next(r for r in log if "train_runtime" in r)
    session = max(r["num_tokens"] for r in steps) - resumed_from
    assert session > 0
    assert abs(final["train_tokens_per_second"] - session / final["train_runtime"]) <= 0.1, (final, session)
    lines = [x for x in stdout.splitlines() if x.startswith("step ") and "reward" in x]
    assert lines and all(x.endswith(" tok/s") for x in lines), lines

