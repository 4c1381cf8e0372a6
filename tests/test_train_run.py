"""End-to-end training runs on the tiny model: loss falls, frozen parts stay bit-identical, LoRA merges,
an interrupted run resumes where it stopped, and `virgo train` runs two real processes on CPU."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from procs import run_group
from safetensors.torch import load_file
from transformers import TrainerCallback

from virgo.train.callbacks import read_log
from virgo.train.config import load_config
from virgo.train.fixture import make_tiny_longthought
from virgo.train.plot import plot_loss
from virgo.train.sft import train

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    return make_tiny_longthought(tmp_path_factory.mktemp("run-data"), n=16, image_frac=0.5, seed=7)


def _cfg(model_dir, train_file, out, *extra):
    return load_config(None, [
        f"model_name_or_path={model_dir}", f"train_files={train_file}", f"output_dir={out}",
        "image_max_pixels=3136", "cutoff_len=1024", "per_device_train_batch_size=4", "learning_rate=2e-3",
        "warmup_ratio=0", "logging_steps=1", "save_strategy=no", "torch_threads=1", "seed=0", *extra])


def _weights(d):
    return load_file(str(Path(d) / "model.safetensors"))


def _losses(out):
    return {r["step"]: r["loss"] for r in read_log(Path(out) / "train_log.jsonl") if "loss" in r}


def test_full_finetune_loss_falls_frozen_tower_unchanged(tiny_model_dir, train_file, tmp_path):
    from transformers import AutoModelForImageTextToText

    from virgo.modeling.load import load_processor
    from virgo.prompts import load_chat_template

    cfg = _cfg(tiny_model_dir, train_file, tmp_path / "full", "max_steps=10")
    out = train(cfg)
    losses = _losses(out)
    assert sorted(losses) == list(range(1, 11)) and all(math.isfinite(v) for v in losses.values())
    assert sum(losses[s] for s in (9, 10)) < sum(losses[s] for s in (1, 2)) - 0.5  # it learns

    before, after = _weights(tiny_model_dir), _weights(out)
    tower = [k for k in before if ".visual." in f".{k}" and ".merger." not in k]
    merger = [k for k in before if ".merger." in k]
    lm = [k for k in before if k.startswith("model.layers.")]  # the checkpoint keeps Qwen2-VL's key layout
    assert tower and merger and lm
    assert all(before[k].equal(after[k]) for k in tower)  # frozen: bit-identical
    assert any(not before[k].equal(after[k]) for k in merger)  # train_merger=true (the paper's text)
    assert all(not before[k].equal(after[k]) for k in lm if k.endswith("up_proj.weight"))

    model = AutoModelForImageTextToText.from_pretrained(out)
    assert type(model).__name__ == "Qwen2VLForConditionalGeneration" and model.config.text_config.use_cache
    assert load_processor(out).chat_template == load_chat_template()
    assert (out / "loss.png").stat().st_size > 1000
    # the resolved config reproduces the run (chat_template auto is recorded as the template it resolved to)
    assert load_config(out / "train_config.yaml") == dataclasses.replace(cfg, chat_template="qwen2vl")
    info = json.loads((out / "run_info.json").read_text())
    assert info["trainable"]["vision_tower"]["trainable"] == 0
    assert info["trainable"]["merger"]["trainable"] == info["trainable"]["merger"]["total"] > 0
    assert info["preflight"]["kept"] == 16 and info["world_size"] == 1


def test_lora_top_layer_packed_merger_frozen(tiny_model_dir, train_file, tmp_path):
    out = train(_cfg(tiny_model_dir, train_file, tmp_path / "lora", "max_steps=4", "finetuning_type=lora",
                     "lora_layers=1", "train_merger=false", "packing=true", "activation_checkpointing=true"))
    assert (out / "adapter" / "adapter_config.json").exists()
    before, after = _weights(tiny_model_dir), _weights(out)  # the merged full model
    assert set(before) == set(after)  # a plain checkpoint: no LoRA or PEFT names left
    for k in before:
        top_layer_linear = k.startswith("model.layers.1.") and k.endswith("proj.weight")
        assert before[k].equal(after[k]) != top_layer_linear, k  # only LoRA targets changed
    info = json.loads((out / "run_info.json").read_text())
    assert info["merger"].startswith("frozen") and info["trainable"]["merger"]["trainable"] == 0
    assert all(math.isfinite(v) for v in _losses(out).values())


@pytest.mark.parametrize("tuning", ["full", "lora"])
def test_linear_cross_entropy_trains_as_the_logits_path_does(tiny_model_dir, train_file, tmp_path, tuning):
    """The same packed run with the LM head and loss as one chunked op: the same loss at every step and the same
    dev loss, the same weights at the end (up to Adam's amplified rounding), and the run says which path it took."""

    runs = {}
    for lce in (False, True):
        runs[lce] = train(_cfg(tiny_model_dir, train_file, tmp_path / f"lce-{lce}", "max_steps=4", "packing=true",
                               f"finetuning_type={tuning}", "val_size=4", "eval_strategy=steps", "eval_steps=2",
                               f"linear_cross_entropy={str(lce).lower()}"))
        assert json.loads((runs[lce] / "run_info.json").read_text())["linear_cross_entropy"] is lce
    logs = {lce: read_log(out / "train_log.jsonl") for lce, out in runs.items()}
    for key in ("loss", "eval_loss"):
        plain = {r["step"]: r[key] for r in logs[False] if key in r}
        fused = {r["step"]: r[key] for r in logs[True] if key in r}
        assert len(plain) >= 2 and fused.keys() == plain.keys(), key
        for step, value in plain.items():
            assert fused[step] == pytest.approx(value, rel=1e-4), (key, step)
    before, plain_w, fused_w = _weights(tiny_model_dir), _weights(runs[False]), _weights(runs[True])
    assert any(not before[k].equal(plain_w[k]) for k in before)  # it trained
    # Adam divides by the root of the squared gradients, so float-rounding differences of near-zero gradient
    # entries move weights by up to about 0.5% of an update (measured); 2% of the largest update is the bound.
    for k in plain_w:
        update = (plain_w[k] - before[k]).abs().max().item()
        assert (fused_w[k] - plain_w[k]).abs().max().item() <= 0.02 * update, k


def test_lora_init_depends_on_the_seed_not_on_what_ran_before(tiny_model_dir, train_file, tmp_path):
    import torch

    outs = []
    for i, rng_state in enumerate((1, 2)):  # different global RNG states, as after different earlier stages
        torch.manual_seed(rng_state)
        torch.rand(rng_state * 7)
        outs.append(train(_cfg(tiny_model_dir, train_file, tmp_path / f"seeded-{i}", "max_steps=1",
                               "finetuning_type=lora", "lora_layers=1")))
    a, b = (load_file(str(o / "adapter" / "adapter_model.safetensors")) for o in outs)
    lora_a = [k for k in a if "lora_A" in k]
    assert lora_a and all(a[k].equal(b[k]) for k in a)  # same seed, same data: same adapter
    assert any(a[k].abs().sum() > 0 for k in lora_a)


def test_a_checkpoint_per_epoch_with_the_global_batch_and_chat_template_recorded(tiny_model_dir, train_file,
                                                                                 tmp_path, capsys):
    from transformers import AutoModelForImageTextToText

    from virgo.modeling.load import load_processor
    from virgo.prompts import load_chat_template

    custom = tmp_path / "slow.jinja"
    custom.write_text(load_chat_template().replace("You are a helpful assistant.", "You think slowly."))
    # 8 samples at 4 per step: 2 steps per epoch. The recipe claims a global batch of 128; this launch gives 4.
    cfg = _cfg(tiny_model_dir, train_file, tmp_path / "epochs", "max_samples=8", "num_train_epochs=2",
               "save_strategy=epoch", "expected_global_batch=128", f"chat_template={custom}")
    with pytest.warns(UserWarning, match="global batch 4 = 1 process"):
        out = train(cfg)
    printed = capsys.readouterr().out
    assert "global batch 4 = 1 process(es) x 4 per device x 1 accumulation" in printed
    assert "WARNING: global batch 4" in printed and f"chat template {custom}" in printed

    index = read_log(out / "checkpoints.jsonl")
    assert [(r["epoch"], r["step"], r["checkpoint"]) for r in index] == [(1.0, 2, "checkpoint-2"),
                                                                        (2.0, 4, "checkpoint-4")]
    epoch1 = AutoModelForImageTextToText.from_pretrained(out / "checkpoint-2")
    assert epoch1.config.model_type == "qwen2_vl"
    key = "model.language_model.layers.0.mlp.up_proj.weight"
    final = AutoModelForImageTextToText.from_pretrained(out).state_dict()
    assert AutoModelForImageTextToText.from_pretrained(out / "checkpoint-4").state_dict()[key].equal(final[key])
    assert not epoch1.state_dict()[key].equal(final[key])  # epoch 1 is its own model, not a copy of the last

    info = json.loads((out / "run_info.json").read_text())
    assert (info["global_batch"], info["expected_global_batch"]) == (4, 128)
    assert "launch 32 processes" in info["global_batch_warning"]
    assert info["chat_template"] == str(custom)
    assert load_processor(out).chat_template == custom.read_text()  # the template the data was rendered with
    assert load_processor(out / "checkpoint-2").chat_template == custom.read_text()


def _tokens_seen(out):
    return {r["step"]: r["num_input_tokens_seen"] for r in read_log(Path(out) / "train_log.jsonl") if "loss" in r}


@pytest.mark.parametrize("packing", ["false", "true"])
def test_the_log_counts_every_real_token_and_its_rate(tiny_model_dir, train_file, tmp_path, capsys, packing):
    """Two epochs: the tokens counted are the samples' own, twice (padding never counts; a packed row has none),
    every training log event has its rate, and the log line shows it."""
    out = train(_cfg(tiny_model_dir, train_file, tmp_path / packing, "num_train_epochs=2", f"packing={packing}"))
    info = json.loads((out / "run_info.json").read_text())["preflight"]
    assert info["over_cutoff"] == 0
    per_epoch = info["length"]["mean"] * info["kept"]  # the samples' tokens, image tokens included
    records = read_log(out / "train_log.jsonl")
    steps = [r for r in records if "loss" in r]
    seen = [r["num_input_tokens_seen"] for r in steps]
    assert seen == sorted(seen) and len(set(seen)) == len(seen) > 1  # one log per step, each step adds tokens
    assert seen[-1] == pytest.approx(2 * per_epoch, abs=0.5)
    assert all(r["tokens_per_s"] > 0 for r in steps)
    final = next(r for r in records if "train_runtime" in r)
    assert final["train_tokens_per_second"] == pytest.approx(seen[-1] / final["train_runtime"], rel=1e-3)
    printed = capsys.readouterr().out
    assert re.search(r"step 1/\d+ \(epoch [\d.]+\), loss [\d.]+, .*, [\d,]+ tok/s\n", printed)
    assert re.search(r"took [\d.]+ s, [\d,]+ tok/s\n", printed)
    # loss.png: loss, learning rate and tokens/s (7 x 7.5 inches at 100 dpi); a log without rates has two panels
    assert Image.open(out / "loss.png").size == (700, 750)
    old = tmp_path / f"old-{packing}" / "train_log.jsonl"
    old.parent.mkdir()
    old.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "tokens_per_s"}) + "\n" for r in records))
    assert Image.open(plot_loss(old, old.parent / "loss.png")).size == (700, 550)


def test_token_rate_leaves_out_what_runs_between_log_events():
    """A padded micro-batch counts its attention mask, a packed row its length; the rate runs from the first
    micro-batch after a log event, so an evaluation or a save right after the event does not lower it."""
    import torch

    from virgo.train.throughput import TokenMeter

    meter = TokenMeter()
    meter.count({"input_ids": torch.zeros(2, 5), "attention_mask": torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])})
    meter.count({"input_ids": torch.zeros(1, 7)})
    assert int(meter.take_local()) == 8 + 7 and meter.take_local() == 0
    first = meter.fields({"loss": 1.0}, 15, 15)
    assert first["num_input_tokens_seen"] == 15 and first["tokens_per_s"] > 0
    time.sleep(0.5)  # an evaluation after the log event
    meter.count({"input_ids": torch.zeros(1, 1000)})
    assert meter.fields({"loss": 1.0}, 1000, 1015)["tokens_per_s"] > 1000 / 0.5 * 5  # not 1,000 tokens / 0.5 s
    final = meter.fields({"train_runtime": 2.0, "train_loss": 1.0}, 0, 1015)
    assert final == {"num_input_tokens_seen": 1015, "train_tokens_per_second": 507.5}


class _Interrupt(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 5:
            raise KeyboardInterrupt("simulated interruption")


def test_interrupted_run_resumes_where_it_stopped(tiny_model_dir, train_file, tmp_path):
    extra = ("max_steps=7", "save_strategy=steps", "save_steps=3")
    ref = train(_cfg(tiny_model_dir, train_file, tmp_path / "ref", *extra))
    cfg = _cfg(tiny_model_dir, train_file, tmp_path / "cut", *extra)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, callbacks=[_Interrupt()])
    assert sorted(_losses(cfg.output_dir)) == [1, 2, 3, 4]  # step 5 ran but was never logged or saved
    assert [r["step"] for r in read_log(Path(cfg.output_dir) / "checkpoints.jsonl")] == [3]
    assert (Path(cfg.output_dir) / "checkpoint-3").is_dir() and not (Path(cfg.output_dir) / "checkpoint-6").exists()

    out = train(cfg)  # resume_from_checkpoint=auto picks checkpoint-3
    info = json.loads((out / "run_info.json").read_text())
    assert info["resumed_from"].endswith("checkpoint-3")
    records = [r for r in read_log(out / "train_log.jsonl") if "loss" in r]
    assert [r["step"] for r in records] == list(range(1, 8))  # steps 4.. continue, none repeated in the log
    assert [r["step"] for r in read_log(out / "checkpoints.jsonl")] == [3, 6, 7]
    want, got = _losses(ref), _losses(out)
    for step in range(1, 8):
        assert got[step] == pytest.approx(want[step], abs=1e-5), step
    assert _tokens_seen(out) == _tokens_seen(ref)  # the count is saved with the checkpoint and goes on from it
    state = json.loads((out / "checkpoint-7" / "trainer_state.json").read_text())
    assert state["global_step"] == 7


@pytest.mark.distributed
def test_cli_two_processes_on_cpu(tiny_model_dir, tmp_path):
    """The interface command: two real gloo processes, a loadable model and a JSONL log with loss and tokens."""
    from transformers import AutoModelForImageTextToText

    cache = tmp_path / "cache"
    (cache / "tiny-models").mkdir(parents=True)
    (cache / "tiny-models" / "xs-seed0").symlink_to(tiny_model_dir)  # what `tiny:xs` would build
    out = tmp_path / "OUT"
    env = {**os.environ, "VIRGO_CACHE": str(cache)}
    proc = run_group(
        [sys.executable, "-m", "virgo", "train", "--config", "recipes/tiny-cpu.yaml", "--num-processes", "2",
         "--max-steps", "8", "--output-dir", str(out)], cwd=REPO, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "torch.distributed.run" in proc.stdout and "--nproc_per_node=2" in proc.stdout
    info = json.loads((out / "run_info.json").read_text())
    assert info["world_size"] == 2
    logs = [r for f in out.glob("*log*.jsonl") for r in read_log(f)]
    losses = [r["loss"] for r in logs if "loss" in r]
    assert losses and all(math.isfinite(v) for v in losses)
    # 128 examples / (8 per device x 2 processes) = 8 steps per epoch: the epoch counter shows both ranks ran,
    # and the tokens counted are the whole epoch's, summed over the two processes (each saw half)
    assert max(r["epoch"] for r in logs) == pytest.approx(1.0)
    preflight = info["preflight"]
    assert preflight["kept"] == 128 and preflight["over_cutoff"] == 0
    final = next(r for r in logs if "train_runtime" in r)
    assert final["num_input_tokens_seen"] == pytest.approx(preflight["length"]["mean"] * 128, abs=0.5)
    model = AutoModelForImageTextToText.from_pretrained(out)
    assert model.config.model_type == "qwen2_vl"


@pytest.mark.distributed
@pytest.mark.parametrize("tuning", ["full", "lora"])
def test_zero3_two_processes_on_cpu(tiny_model_dir, train_file, tmp_path, tuning):
    """DeepSpeed ZeRO-3 through the same command (DeepSpeed's CPU accelerator over gloo). With LoRA the run ends by
    merging the adapter into a base model loaded on rank 0 alone, outside DeepSpeed's zero.Init (inside it, the
    load waited for the other rank forever)."""
    pytest.importorskip("deepspeed", reason="DeepSpeed is an optional extra: pip install --no-build-isolation "
                                            "'virgo[deepspeed]' to run the ZeRO-3 test")
    from transformers import AutoModelForImageTextToText

    out = tmp_path / "z3"
    proc = run_group(
        [sys.executable, "-m", "virgo", "train", "--config", "recipes/tiny-cpu.yaml", "--num-processes", "2",
         "--launch", "zero3", "--max-steps", "4", "--output-dir", str(out), f"model_name_or_path={tiny_model_dir}",
         f"train_files={train_file}", "per_device_train_batch_size=4", "logging_steps=1",
         f"finetuning_type={tuning}"], cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert json.loads((out / "run_info.json").read_text())["world_size"] == 2
    assert (out / "checkpoint-4" / "global_step4").is_dir()  # a DeepSpeed (partitioned) checkpoint
    losses = _losses(out)
    assert sorted(losses) == [1, 2, 3, 4] and all(math.isfinite(v) for v in losses.values())
    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir).state_dict()
    tuned = AutoModelForImageTextToText.from_pretrained(out).state_dict()
    assert tuned["model.visual.blocks.0.attn.qkv.weight"].equal(base["model.visual.blocks.0.attn.qkv.weight"])
    assert not tuned["model.language_model.layers.0.mlp.up_proj.weight"].equal(
        base["model.language_model.layers.0.mlp.up_proj.weight"])
    assert (out / "adapter" / "adapter_model.safetensors").exists() == (tuning == "lora")


def test_tiny_model_names_build_once_into_the_cache(tmp_path, monkeypatch):
    from virgo.train.models import resolve_model

    monkeypatch.setenv("VIRGO_CACHE", str(tmp_path))
    path = Path(resolve_model("tiny:xs:1"))
    assert path == tmp_path / "tiny-models" / "xs-seed1" and (path / "model.safetensors").exists()
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert Path(resolve_model("tiny:xs:1")) == path and (path / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in path.parent.iterdir()] == ["xs-seed1"]  # no temporary build directory left over
    assert resolve_model("Qwen/Qwen2-VL-7B-Instruct") == "Qwen/Qwen2-VL-7B-Instruct"
    with pytest.raises(ValueError, match="tiny size must be one of"):
        resolve_model("tiny:xxl")
