"""Visual and text-only prompts in the same GRPO batch: every model family, and two ranks under DDP.

An observer (a forward pre-hook registered after the trainer's own, so it sees what the model really gets) records
each multi-token forward of the policy: how many rows hold image tokens, and whether image inputs reached the
model. That shows the runs went through the two paths the fix is about: a batch whose processor call mixed
samples with and without images, and a micro-batch (or chunk) with no image at all.

This module is also the entry point of each rank in the two-rank test (``torchrun tests/test_rl_mixed.py``).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest
from procs import run_group
from transformers import TrainerCallback

from virgo.records import Problem, read_records, write_records

FAMILIES = ("tiny:qwen2_vl:xs", "tiny:qwen2_5_vl:xs", "tiny:qwen3_vl:xs")


class Observe(TrainerCallback):
    """Records every multi-token forward of the policy into ``OUTPUT_DIR/forwards-rank<R>.json``."""

    def __init__(self):
        self.records: list[dict] = []
        self.handles: list = []
        self.tower = self.seen = 0  # vision tower runs so far, and at the end of the previous forward

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        import torch

        from virgo.modeling.family import IMAGE_TOKEN, detect

        image_id = kwargs["processing_class"].tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)

        def hook(module, hook_args, hook_kwargs):
            ids = hook_kwargs.get("input_ids")
            if ids is not None and ids.shape[1] > 1:
                # generate() encodes the images before its first step and passes the features instead
                images_in = hook_kwargs.get("pixel_values") is not None or bool(hook_kwargs.get("mm_encoder_outputs"))
                self.records.append({"grad": torch.is_grad_enabled(), "rows": ids.shape[0],
                                     "rows_with_image": int((ids == image_id).any(dim=1).sum()),
                                     "pixels": images_in})

        def count(module, hook_args, output):
            self.tower += 1

        def done(module, hook_args, hook_kwargs, output):
            # the tower runs inside the forward, or just before it (generate() encodes images first, and the
            # sharded-launch dummy of a text-only first step runs in a pre-hook of the whole model)
            ids = hook_kwargs.get("input_ids")
            if ids is not None and ids.shape[1] > 1:
                self.records[-1]["tower"] = self.tower - self.seen
            self.seen = self.tower

        inner = detect(model).inner(model)
        self.handles = [inner.register_forward_pre_hook(hook, with_kwargs=True),
                        inner.visual.register_forward_hook(count),
                        inner.register_forward_hook(done, with_kwargs=True)]

    def on_train_end(self, args, state, control, **kwargs):
        for handle in self.handles:
            handle.remove()
        rank = int(os.environ.get("RANK", "0"))
        Path(args.output_dir, f"forwards-rank{rank}.json").write_text(json.dumps(self.records))


def ordered_problems(tmp: Path, pattern: str = "tv") -> Path:
    """The lucky-number problems (4 text-only, 4 visual) in the order ``pattern`` repeats (t = text, v = visual)."""
    from virgo.rl.fixture import make_lucky_task

    problems = read_records(make_lucky_task(tmp / "task")["problems"], Problem)
    pools = {"t": [p for p in problems if not p.images], "v": [p for p in problems if p.images]}
    order = [pools[kind].pop(0) for kind in (pattern * len(problems))[:len(problems)]]
    path = tmp / "task" / f"order-{pattern}.jsonl"
    write_records(path, order)
    return path


def overrides(out: Path, problems: Path, model: str, **extra) -> list[str]:
    values = {"model_name_or_path": model, "train_files": f"[{problems}]", "output_dir": str(out),
              "report_to": "none", "progress": "false", "max_steps": 2, "shuffle_dataset": "false",
              "num_generations": 2, "max_completion_length": 12, "logging_steps": 1, "save_strategy": "no",
              "resume_from_checkpoint": "none", **extra}
    return [f"{k}={v}" for k, v in values.items()]


def losses(out: Path) -> list[float]:
    from virgo.train.callbacks import read_log

    return [r["loss"] for r in read_log(out / "train_log.jsonl") if "loss" in r]


@pytest.mark.parametrize("family", FAMILIES)
def test_the_two_conventions_and_the_empty_image_hook(family):
    """What the fix rests on, on the real processor and model: the processor takes ``[]`` (not ``None``) for a
    sample without images, and the model refuses empty image tensors unless `drop_empty_images` removes them."""
    import torch
    from PIL import Image

    from virgo.modeling.load import load_model, load_processor
    from virgo.rl.trainer import install_empty_image_hook
    from virgo.train.models import resolve_model

    path = resolve_model(family)
    processor, model = load_processor(path), load_model(path)
    texts = ["<|im_start|>user\nhi<|im_end|>\n",
             "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>hi<|im_end|>\n"]
    image = Image.new("RGB", (32, 32), (200, 30, 30))
    with pytest.raises(TypeError, match="NoneType"):
        processor(images=[None, [image]], text=texts, padding=True, return_tensors="pt")
    both = processor(images=[[], [image]], text=texts, padding=True, return_tensors="pt")
    assert both["image_grid_thw"].shape[0] == 1
    text = processor(text=texts[:1], return_tensors="pt")
    empty = {"pixel_values": both["pixel_values"][:0], "image_grid_thw": both["image_grid_thw"][:0]}
    with pytest.raises((ValueError, RuntimeError)):
        model(**text, **empty)
    handle = install_empty_image_hook(model)
    try:
        with torch.no_grad():
            hooked = model(**text, **empty).logits
            plain = model(**text).logits
    finally:
        handle.remove()
    torch.testing.assert_close(hooked, plain)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_sharded_launch_dummy_changes_nothing_and_reaches_the_tower(family):
    """`VisionEveryForward` (ZeRO-3 / FSDP2 with text-only prompts): a text-only forward and a greedy generation
    give exactly what they give without it, while the vision tower ran once in each and the backward reached it
    (the merger gets a gradient, all zeros) so that sharded ranks' collectives pair."""
    import torch

    from virgo.modeling.family import IMAGE_TOKEN, detect
    from virgo.modeling.load import load_model, load_processor
    from virgo.rl.trainer import VisionEveryForward
    from virgo.train.modality import DummyImage
    from virgo.train.models import resolve_model

    path = resolve_model(family)
    processor, model = load_processor(path), load_model(path)
    inner = detect(model).inner(model)
    text = processor(text=["<|im_start|>user\nwhat is two plus two?<|im_end|>\n<|im_start|>assistant\n"],
                     return_tensors="pt")
    with torch.no_grad():
        plain = model(**text).logits
        plain_gen = model.generate(**text, max_new_tokens=6, do_sample=False)
    runs = []
    counter = inner.visual.register_forward_hook(lambda *a: runs.append(1))
    dummy = DummyImage.for_processor(processor.image_processor,
                                     processor.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN))
    handles = VisionEveryForward(dummy).install(model, inner)
    try:
        hooked = model(**text).logits
        assert len(runs) == 1
        assert torch.equal(hooked, plain)
        hooked.sum().backward()
        merger = [p.grad for n, p in inner.visual.named_parameters() if "merger" in n]
        assert merger and all(g is not None and not g.any() for g in merger)
        runs.clear()
        with torch.no_grad():
            hooked_gen = model.generate(**text, max_new_tokens=6, do_sample=False)
        assert len(runs) == 1  # the first step only: decoding steps with a KV cache run no tower on any rank
        assert torch.equal(hooked_gen, plain_gen)
    finally:
        for handle in [*handles, counter]:
            handle.remove()


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_trains_on_a_mixed_batch(tmp_path, family):
    from virgo.rl.config import load_config
    from virgo.rl.grpo import train

    out = tmp_path / "run"
    # One generation of 2 prompts (one text, one visual) x 2 for two optimizer steps of 2 completions: the processor
    # sees a mixed batch, and the policy's old-log-prob pass (chunks of 2, in prompt order) a chunk with no image.
    cfg = load_config("tiny-cpu", overrides(out, ordered_problems(tmp_path), family,
                                            per_device_train_batch_size=2, steps_per_generation=2))
    observer = Observe()
    train(cfg, callbacks=[observer])
    values = losses(out)
    assert len(values) == 2 and all(math.isfinite(v) for v in values)
    seen = observer.records
    assert any(0 < r["rows_with_image"] < r["rows"] and r["pixels"] for r in seen), seen  # mixed, images in
    assert any(r["rows_with_image"] == 0 and not r["pixels"] for r in seen), seen  # none at all: no image input
    assert all(r["pixels"] == (r["rows_with_image"] > 0) for r in seen), seen
    assert (out / "model.safetensors").exists()


@pytest.mark.parametrize("family", FAMILIES)
def test_mixed_batch_log_probs_match_each_sample_alone(tmp_path, family):
    """The mixed batch is not only accepted but right: the log-probabilities GRPO computes for a batch of text-only
    and visual samples (pixels, image grids, token types and padding all sliced per sample, a text-only chunk
    included) equal those of each sample run alone through the model."""
    import torch

    from virgo.modeling.family import IMAGE_TOKEN
    from virgo.rl.config import load_config
    from virgo.rl.grpo import build

    # The text-only prompt is the longer one, so the visual row is padded: its image tokens must stay aligned with
    # the token types and pixels the processor makes for it.
    visual = read_records(ordered_problems(tmp_path), Problem)[1]
    long_text = Problem(id="long", question=" ".join(["Which number is the lucky one?"] * 12), answer="7")
    problems = tmp_path / "two.jsonl"
    write_records(problems, [long_text, visual])  # image paths were made absolute on reading
    cfg = load_config("tiny-cpu", overrides(tmp_path / "run", problems, family, per_device_train_batch_size=2,
                                            steps_per_generation=2))
    run = build(cfg)
    trainer, processor = run.trainer, run.processor
    trainer.model.train()
    rows = [trainer.train_dataset[i] for i in (0, 0, 1, 1)]  # a text-only prompt x 2, a visual one x 2
    assert not rows[0]["images"] and rows[2]["images"]
    with run.rewards, torch.no_grad():
        out = trainer._generate_and_score_completions(rows)
        old = out["old_per_token_logps"]  # chunks of 2 in prompt order: the first chunk has no image
        image_id = processor.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        assert out["prompt_mask"][2].sum() < out["prompt_mask"][0].sum()  # the visual prompt is the shorter one
        for i, row in enumerate(rows):
            prompt = out["prompt_ids"][i][out["prompt_mask"][i].bool()]
            completion = out["completion_ids"][i][out["completion_mask"][i].bool()]
            ids = torch.cat([prompt, completion])[None]
            extra = {}
            if row["images"]:
                extra = dict(processor.image_processor(images=row["images"], return_tensors="pt"))
                extra["mm_token_type_ids"] = (ids == image_id).int()
            logits = trainer.model(input_ids=ids, attention_mask=torch.ones_like(ids), **extra).logits
            logps = torch.log_softmax(logits[0, len(prompt) - 1:-1].float() / trainer.temperature, dim=-1)
            alone = logps.gather(1, completion[:, None])[:, 0]
            torch.testing.assert_close(old[i][:len(completion)], alone, atol=2e-4, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize(("launch", "tuning"), [("ddp", "full"), ("zero3", "full"), ("zero3", "lora")])
def test_two_ranks_each_with_a_text_and_a_visual_prompt(tmp_path, launch, tuning):
    """torchrun, 2 CPU ranks, gloo. Each optimizer step accumulates two micro-batches of one prompt x 2 generations
    per rank; in order (t, v, v, t, ...) rank 0 gets a text-only then a visual prompt, rank 1 a visual then a text-only
    one. So every step each rank has one of each, and in every micro-batch one rank has images and the other not.
    Under DDP the text-only rank skips the vision tower and merger and the gradient all-reduce must still pair up.
    Under ZeRO-3 (DeepSpeed's CPU runtime; full fine-tuning, so TRL's reference model is sharded too) the tower's
    weights are sharded: every rank runs it in every forward, a dummy image where there is none, or the ranks'
    collectives (and DeepSpeed's check that they trace the same module order) fail. With LoRA under ZeRO-3 the run
    also saves: the adapter without TRL's frozen "ref" copy, and the merged model (loaded on rank 0 alone)."""
    if launch == "zero3":
        pytest.importorskip("deepspeed", reason="pip install --no-build-isolation 'virgo[deepspeed]' for ZeRO-3")
    out = tmp_path / launch
    args = overrides(out, ordered_problems(tmp_path, "tvvt"), "tiny:xs", per_device_train_batch_size=2,
                     gradient_accumulation_steps=2, steps_per_generation=1, launch=launch, finetuning_type=tuning)
    from virgo.train.models import resolve_model

    resolve_model("tiny:xs")  # built once, before the ranks
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__,
           "tiny-cpu", *args]
    proc = run_group(cmd, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    values = losses(out)
    assert len(values) == 2 and all(math.isfinite(v) for v in values)
    expected = {0: [False, True, False, True], 1: [True, False, True, False]}  # visual prompt? per micro-step
    for rank, kinds in expected.items():
        seen = json.loads((out / f"forwards-rank{rank}.json").read_text())
        rollouts = [r for r in seen if not r["grad"] and r["rows"] == 2 and r["pixels"] == (r["rows_with_image"] > 0)
                    and r["rows_with_image"] in (0, 2)]
        trained = [r for r in seen if r["grad"]]
        assert [r["rows_with_image"] == 2 for r in trained] == kinds, (rank, seen)
        assert [r["pixels"] for r in trained] == kinds, (rank, seen)
        assert len(rollouts) >= 4, (rank, seen)
        # the vision tower ran in a forward iff it had images (DDP), in every forward (ZeRO-3)
        assert all(r["tower"] == (1 if launch == "zero3" or r["pixels"] else 0) for r in seen), (rank, seen)
        assert any(not r["pixels"] for r in seen), (rank, seen)  # text-only forwards happened on this rank
    assert json.loads((out / "run_info.json").read_text())["world_size"] == 2
    assert (out / "model.safetensors").exists()
    if tuning == "lora":
        from safetensors import safe_open

        with safe_open(str(out / "adapter" / "adapter_model.safetensors"), "pt") as f:
            keys = list(f.keys())
        assert any("lora_" in k for k in keys) and not any(".ref." in k for k in keys), keys


if __name__ == "__main__":  # one rank of the two-rank test
    from virgo.rl.config import load_config
    from virgo.rl.grpo import train
    from virgo.train.launch import close_process_group

    train(load_config(sys.argv[1], sys.argv[2:]), callbacks=[Observe()])
    close_process_group()  # as `virgo rl`'s ranks end (`rank_main`): a live gloo group can abort the exit
