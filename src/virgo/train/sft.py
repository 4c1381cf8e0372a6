"""Supervised fine-tuning of a Qwen2-VL-family model on long-thought data, on transformers' Trainer.

``train(cfg)`` runs in the current process; under ``torchrun`` / ``accelerate launch`` the same function runs in
every rank (Trainer and accelerate handle DDP, DeepSpeed ZeRO-3 or FSDP2). ``virgo train`` launches it.

    torchrun --standalone --nproc_per_node 2 -m virgo.train.sft --config tiny-cpu max_steps=6 output_dir=OUT

Outputs in ``output_dir``: the final model (safetensors + processor + chat template; with LoRA the merged model,
and the adapter in ``adapter/``), ``checkpoint-N/`` per epoch (or per ``save_steps``), ``train_config.yaml``
(the resolved config), ``run_info.json`` (pre-flight report, trainable parameters per module, world size,
global batch, chat template, versions), ``train_log.jsonl`` (one record per log step with ``loss``),
``checkpoints.jsonl`` and ``loss.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from virgo.train.callbacks import CHECKPOINTS_NAME, LOG_NAME, CheckpointIndexCallback, JsonlLogCallback, truncate_log
from virgo.train.config import TrainConfig, dump_config, load_config

CONFIG_NAME = "train_config.yaml"
RUN_INFO_NAME = "run_info.json"
DEEPSPEED_ZERO3 = "ds_z3.json"


def _say(is_main: bool, *lines: str) -> None:
    if is_main:
        for line in lines:
            print(line, flush=True)


def deepspeed_config(cfg: TrainConfig) -> str | None:
    """The DeepSpeed JSON for a ZeRO-3 run, given to TrainingArguments before the model loads (so weights load
    already partitioned)."""
    if cfg.launch != "zero3":
        return None
    return str(Path(str(resources.files("virgo") / "recipes" / "launch" / DEEPSPEED_ZERO3)))


def training_arguments(cfg: TrainConfig):
    """Map the config 1:1 onto TrainingArguments (no hand-written loop, no hand-written sharding)."""
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if cfg.launch == "zero3" and distributed and not cuda:
        # DeepSpeed's CPU runtime (tests on CPU): its own process group must exist before the ZeRO-3 config
        # reads the world size. On GPUs accelerate's DeepSpeed launcher does this.
        import deepspeed

        deepspeed.init_distributed(dist_backend="gloo")
    return TrainingArguments(
        output_dir=cfg.output_dir,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a value < 1 is a fraction of the total steps
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        bf16=cfg.bf16,
        seed=cfg.seed,
        activation_checkpointing=cfg.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if cfg.gradient_checkpointing else None,
        save_strategy=cfg.save_strategy,
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        report_to="none",
        disable_tqdm=not cfg.progress,
        remove_unused_columns=False,  # the collator needs every field; the model signature check would drop some
        label_names=["labels"],
        dataloader_num_workers=cfg.dataloader_num_workers,
        dataloader_pin_memory=cuda,
        use_cpu=not cuda,
        ddp_backend="gloo" if distributed and not cuda else None,  # None when alone: no process group at all
        ddp_timeout=cfg.ddp_timeout,
        deepspeed=deepspeed_config(cfg),
    )


def resolve_resume(cfg: TrainConfig) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    r = cfg.resume_from_checkpoint
    if r == "none":
        return None
    if r == "auto":
        out = Path(cfg.output_dir)
        return get_last_checkpoint(str(out)) if out.is_dir() else None
    if not (Path(r) / "trainer_state.json").exists():
        raise FileNotFoundError(f"resume_from_checkpoint={r!r}: not a Trainer checkpoint (no trainer_state.json)")
    return r


def _checkpoint_step(checkpoint: str) -> int:
    return json.loads((Path(checkpoint) / "trainer_state.json").read_text())["global_step"]


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("virgo", "torch", "transformers", "accelerate", "peft", "deepspeed"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _set_use_cache(model, value: bool) -> None:
    # Qwen2-VL keeps use_cache in its text config (the text model reads it from there).
    config = getattr(model.config, "text_config", None) or model.config
    config.use_cache = value


def _load_model(cfg: TrainConfig, model_path: str):
    from virgo.modeling.load import load_model

    kwargs: dict[str, Any] = {}
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    model = load_model(model_path, dtype=cfg.torch_dtype, **kwargs)
    _set_use_cache(model, False)  # no KV cache in training
    return model


def save_final(trainer, cfg: TrainConfig, model_path: str, processor, out: Path) -> None:
    """The final HF model dir in ``out``; with LoRA, ``out/adapter`` plus the merged full model in ``out``."""
    _set_use_cache(trainer.model, True)  # the saved model is for generation
    if cfg.finetuning_type == "full":
        trainer.save_model(str(out))
    else:
        trainer.save_model(str(out / "adapter"))
        trainer.accelerator.wait_for_everyone()
        if trainer.is_world_process_zero():
            # Merge on a fresh copy of the base weights: works the same whatever sharding the run used.
            from peft import PeftModel

            base = _load_model(cfg, model_path)
            merged = PeftModel.from_pretrained(base, str(out / "adapter")).merge_and_unload()
            _set_use_cache(merged, True)
            merged.save_pretrained(str(out), safe_serialization=True)
    if trainer.is_world_process_zero():
        processor.save_pretrained(str(out))
    trainer.accelerator.wait_for_everyone()


def train(cfg: TrainConfig, *, callbacks: Sequence[Any] = ()) -> Path:
    """Fine-tune ``cfg.model_name_or_path`` on ``cfg.train_files``; returns the output directory (a model dir)."""
    cfg.validate()
    if not cfg.output_dir:
        raise ValueError("output_dir is not set")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from virgo.modeling.load import load_processor
    from virgo.prompts import load_chat_template
    from virgo.train.collate import SFTCollator
    from virgo.train.data import IMAGE_TOKEN, build_dataset, format_sample
    from virgo.train.freeze import format_summary, setup_trainable, trainable_summary, vision_tower
    from virgo.train.models import resolve_model
    from virgo.train.packing import rope_index_of
    from virgo.train.plot import plot_loss
    from virgo.train.trainer import SFTTrainer

    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    out = Path(cfg.output_dir)
    args = training_arguments(cfg)  # before the model: sets up the process group and ZeRO-3 partitioned loading
    is_main = args.process_index == 0
    model_path = resolve_model(cfg.model_name_or_path)

    processor = load_processor(model_path)
    # The one chat template the data was rendered with travels with every checkpoint and the final model.
    processor.chat_template = load_chat_template(cfg.chat_template)
    processor.tokenizer.chat_template = processor.chat_template
    dataset, preflight = build_dataset(cfg, processor, progress=is_main and cfg.progress)
    _say(is_main, *preflight.lines(), "  first sample (trained tokens in \u27e6 \u27e7):",
         "  " + format_sample(dataset.samples[0], processor.tokenizer, max_chars=600))

    # The Trainer seeds only when it starts, after the model exists: LoRA's random init would otherwise depend on
    # whatever ran earlier in the process (a resumed pipeline would train a different model than a fresh one).
    from transformers import set_seed

    set_seed(cfg.seed)
    model = setup_trainable(_load_model(cfg, model_path), cfg)
    summary = trainable_summary(model)
    merger = "trainable (paper, section 2.1.2)" if cfg.train_merger else "frozen (as the released config did)"
    tower = "frozen" if cfg.freeze_vision_tower else "trainable"
    _say(is_main, f"trainable parameters ({cfg.finetuning_type} fine-tuning; vision tower {tower}; merger {merger}):",
         *format_summary(summary), f"chat template {cfg.chat_template}, prompt {cfg.prompt}",
         cfg.describe_global_batch(args.world_size))
    batch_warning = cfg.global_batch_warning(args.world_size)
    if batch_warning and is_main:
        # Loud on purpose: a wrong global batch trains a different model with no error anywhere else.
        _say(True, "!" * 100, f"WARNING: {batch_warning}", "!" * 100)
        warnings.warn(batch_warning, stacklevel=2)
    # DDP needs to know that parameters may get no gradient: a trainable merger on a text-only batch.
    has_text_only = any(not s.images for s in dataset.samples)
    vision_trainable = any(p.requires_grad for p in vision_tower(model).parameters())
    args.ddp_find_unused_parameters = bool(has_text_only and vision_trainable)

    tok = processor.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    video_id = tok.convert_tokens_to_ids("<|video_pad|>")
    collator = SFTCollator(pad_token_id=pad_id, image_token_id=tok.convert_tokens_to_ids(IMAGE_TOKEN),
                           video_token_id=video_id if video_id != tok.unk_token_id else None, packing=cfg.packing,
                           rope_index=rope_index_of(model) if cfg.packing else None)

    resume = resolve_resume(cfg)
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, out / CONFIG_NAME)
        info = {"model": model_path, "preflight": preflight.to_dict(), "trainable": summary, "merger": merger,
                "chat_template": cfg.chat_template, "world_size": args.world_size,
                "global_batch": cfg.global_batch(args.world_size), "expected_global_batch": cfg.expected_global_batch,
                "global_batch_warning": batch_warning, "resumed_from": resume, "versions": _versions()}
        (out / RUN_INFO_NAME).write_text(json.dumps(info, indent=2), encoding="utf-8")
        if resume:
            step = _checkpoint_step(resume)
            for name in (LOG_NAME, CHECKPOINTS_NAME):  # what came after the checkpoint was lost
                truncate_log(out / name, step)
            _say(True, f"resuming from {resume} (step {step})")
        else:
            for name in (LOG_NAME, CHECKPOINTS_NAME):
                (out / name).unlink(missing_ok=True)

    trainer = SFTTrainer(
        model=model, args=args, train_dataset=dataset, data_collator=collator, processing_class=processor,
        callbacks=[JsonlLogCallback(out / LOG_NAME), CheckpointIndexCallback(out / CHECKPOINTS_NAME), *callbacks],
    )
    trainer.train(resume_from_checkpoint=resume)
    save_final(trainer, cfg, model_path, processor, out)
    if is_main:
        png = plot_loss(out / LOG_NAME, out / "loss.png")
        _say(True, f"model saved to {out}" + (f"; loss curve {png}" if png else ""))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m virgo.train.sft", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="recipe YAML path or packaged recipe name")
    ap.add_argument("overrides", nargs="*", help="key=value overrides")
    a = ap.parse_args(argv)
    train(load_config(a.config, a.overrides))


if __name__ == "__main__":
    main(sys.argv[1:])
