"""Supervised fine-tuning of a Qwen2-VL-family model on long-thought data, on transformers' Trainer.

``train(cfg)`` runs in the current process; under ``torchrun`` / ``accelerate launch`` the same function runs in
every rank (Trainer and accelerate handle DDP, DeepSpeed ZeRO-3 or FSDP2). ``virgo train`` launches it.

    torchrun --standalone --nproc_per_node 2 -m virgo.train.sft --config tiny-cpu max_steps=6 output_dir=OUT

Outputs in ``output_dir``: the final model (safetensors + processor + chat template; with LoRA the merged model,
and the adapter in ``adapter/``), ``checkpoint-N/`` per epoch (or per ``save_steps``), ``train_config.yaml``
(the resolved config), ``run_info.json`` (pre-flight report, trainable parameters per module, world size,
global batch, chat template, versions), ``train_log.jsonl`` (one record per log step with ``loss``),
``checkpoints.jsonl`` (each save with the dev metrics of that step and the best checkpoint so far), TensorBoard
event files in ``runs/`` (``report_to``), ``gen_eval/step-N/`` (with ``gen_eval_benchmark``) and ``loss.png``.

At scale (several ranks): ``launch=fsdp2`` without accelerate's FSDP shards the model here with torch's
``fully_shard`` (`virgo.train.fsdp`); under ZeRO-3 or FSDP2 every micro-batch carries an image, a dummy one for a
text-only micro-batch (`virgo.train.modality`), so the ranks' collectives stay paired.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from virgo.modeling.load import set_use_cache
from virgo.train.callbacks import (
    CHECKPOINTS_NAME,
    LOG_NAME,
    CheckpointIndexCallback,
    JsonlLogCallback,
    best_checkpoint,
    quiet_trainer_output,
)
from virgo.train.callbacks import (
    say as _say,
)
from virgo.train.config import TrainConfig
from virgo.train.runtime import check_loggers, runtime_args, set_up_process, shard_for_fsdp2, with_eval_defaults

CONFIG_NAME = "train_config.yaml"
RUN_INFO_NAME = "run_info.json"


def resolve_resume(cfg: TrainConfig) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    r = cfg.resume_from_checkpoint
    if r is None or r == "none":
        return None
    if r == "auto":
        out = Path(cfg.output_dir)
        return get_last_checkpoint(str(out)) if out.is_dir() else None
    if not (Path(r) / "trainer_state.json").exists():
        raise FileNotFoundError(f"resume_from_checkpoint={r!r}: not a Trainer checkpoint (no trainer_state.json)")
    return r


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("virgo", "torch", "transformers", "accelerate", "peft", "deepspeed"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _load_model(cfg: TrainConfig, model_path: str):
    from virgo.modeling.load import load_model

    kwargs: dict[str, Any] = {}
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    model = load_model(model_path, dtype=cfg.dtype, **kwargs)
    set_use_cache(model, False)  # no KV cache in training
    return model


@contextlib.contextmanager
def _unsharded_loading(trainer):
    """While a ZeRO-3 config is registered, transformers builds every model under DeepSpeed's ``zero.Init``, which
    broadcasts each parameter to all ranks: a model loaded on rank 0 alone (the LoRA merge) waited forever for the
    others. Loading without it is a plain load; the config is registered again afterwards."""
    from transformers.integrations.deepspeed import (
        is_deepspeed_zero3_enabled,
        set_hf_deepspeed_config,
        unset_hf_deepspeed_config,
    )

    registered = getattr(trainer.args, "hf_deepspeed_config", None)
    if not is_deepspeed_zero3_enabled():
        yield
        return
    unset_hf_deepspeed_config()
    try:
        yield
    finally:
        if registered is not None:
            set_hf_deepspeed_config(registered)


def save_final(trainer, cfg: TrainConfig, model_path: str, processor, out: Path) -> None:
    """The final HF model dir in ``out``; with LoRA, ``out/adapter`` plus the merged full model in ``out``."""
    set_use_cache(trainer.model, True)  # the saved model is for generation
    if cfg.finetuning_type == "full":
        trainer.save_model(str(out))
    else:
        trainer.save_model(str(out / "adapter"))
        trainer.accelerator.wait_for_everyone()
        if trainer.is_world_process_zero():
            # Merge on a fresh copy of the base weights: works the same whatever sharding the run used.
            from peft import PeftModel

            with _unsharded_loading(trainer):
                base = _load_model(cfg, model_path)
            merged = PeftModel.from_pretrained(base, str(out / "adapter")).merge_and_unload()
            set_use_cache(merged, True)
            merged.save_pretrained(str(out), safe_serialization=True)
    if trainer.is_world_process_zero():
        processor.save_pretrained(str(out))
    trainer.accelerator.wait_for_everyone()


def _processor_for(cfg: TrainConfig, model_path: str):
    """(processor carrying the chat template the data is rendered with, cfg with ``chat_template`` resolved)."""
    import dataclasses

    from virgo.modeling.family import resolve_chat_template
    from virgo.modeling.load import load_processor
    from virgo.prompts import load_chat_template

    processor = load_processor(model_path)
    # The one chat template the data was rendered with travels with every checkpoint and the final model.
    template_name = resolve_chat_template(cfg.chat_template, model_path)
    if template_name != cfg.chat_template:
        cfg = dataclasses.replace(cfg, chat_template=template_name)  # recorded as resolved in train_config.yaml
    processor.chat_template = load_chat_template(template_name)
    processor.tokenizer.chat_template = processor.chat_template
    return processor, cfg


def _data(cfg: TrainConfig, processor, is_main: bool):
    """(train set, dev set or None, pre-flight report), with the report and any contamination warning printed."""
    from virgo.train.data import build_datasets, contamination_warnings, format_sample

    train_set, dev_set, preflight = build_datasets(cfg, processor, progress=is_main and cfg.progress)
    _say(is_main, *preflight.lines(), "  first sample (trained tokens in \u27e6 \u27e7):",
         "  " + format_sample(train_set.samples[0], processor.tokenizer, max_chars=600))
    if is_main:
        for warning in contamination_warnings(cfg):  # warnings only: the user decides
            _warn(warning)
    return train_set, dev_set, preflight


def _warn(message: str) -> None:
    """A warning in the run's log and as a Python warning pointing at the caller of `train` (main rank only)."""
    _say(True, f"WARNING: {message}")
    warnings.warn(message, stacklevel=4)


def _model(cfg: TrainConfig, model_path: str, args, ranks: int, is_main: bool):
    """(model ready for the Trainer, trainable summary, merger wording, whether Virgo sharded it with FSDP2, its
    sequence-parallel group or None)."""
    # The Trainer seeds only when it starts, after the model exists: LoRA's random init would otherwise depend on
    # whatever ran earlier in the process (a resumed pipeline would train a different model than a fresh one).
    from transformers import set_seed

    from virgo.train.freeze import format_summary, setup_trainable, trainable_summary

    set_seed(cfg.seed)
    model = setup_trainable(_load_model(cfg, model_path), cfg)
    summary = trainable_summary(model)
    merger = "trainable (paper, section 2.1.2)" if cfg.train_merger else "frozen (as the released config did)"
    tower = "frozen" if cfg.freeze_vision_tower else "trainable"
    _say(is_main, f"trainable parameters ({cfg.finetuning_type} fine-tuning; vision tower {tower}; merger {merger}):",
         *format_summary(summary), f"chat template {cfg.chat_template}, prompt {cfg.prompt}",
         cfg.describe_global_batch(ranks))
    group = None
    if cfg.packing:
        from virgo.train.attention import use_packed_attention

        half = cfg.bf16 or cfg.dtype != "float32"
        choice = use_packed_attention(model, cfg.packed_attention, half_precision=half)
        _say(is_main, choice.describe())
        if cfg.sequence_parallel_size > 1:
            from virgo.train.sequence import SequenceGroup, split_language_model

            group = SequenceGroup.create(cfg.sequence_parallel_size)
            split_language_model(model, group, choice.implementation)
            _say(is_main, f"sequence parallel (Ulysses): each packed row split over {group.size} ranks, "
                          f"{ranks} row(s) at a time; attention on the whole row for "
                          f"1/{group.size} of the heads per rank")
    compile_warning = cfg.compile_warning()
    if compile_warning and is_main:
        _warn(compile_warning)
    model, sharded = shard_for_fsdp2(model, cfg, args)
    if sharded:
        _say(is_main, f"FSDP2: torch fully_shard over {args.world_size} ranks ({args.device.type}): vision blocks, "
                      "vision tower, decoder layers, then the root")
    return model, summary, merger, sharded, group


def _row_sampler(cfg: TrainConfig, train_set, args, is_main: bool):
    """With ``packing_budget``: micro-batches of one row under the token budget (each row once per rank of a
    sequence-parallel group); else None (the Trainer's own batches)."""
    if not cfg.packing_budget:
        return None
    from virgo.train.packing import TokenBudgetBatchSampler

    sampler = TokenBudgetBatchSampler([len(s) for s in train_set.samples], cfg.packing_budget,
                                      seed=args.data_seed if args.data_seed is not None else args.seed,
                                      copies=cfg.sequence_parallel_size)
    _say(is_main, sampler.describe())
    return sampler


def _head_loss(cfg: TrainConfig, model, collator, is_main: bool):
    """With ``linear_cross_entropy`` (and the collator's label positions, its targets): the chunked head loss."""
    if not cfg.linear_cross_entropy:
        return None
    if not collator.logits_at_labels:
        _say(is_main, "linear_cross_entropy: off with logits_at_labels off (its targets come from there)")
        return None
    from virgo.train.headloss import HeadLoss

    _say(is_main, "linear_cross_entropy: the LM head and the loss run as one chunked op (no logits tensor)")
    return HeadLoss(model)


def _collator(cfg: TrainConfig, processor, model, args, datasets, is_main: bool):
    """The batch collator; with a dummy image for image-less micro-batches when the run shards the vision tower."""
    from virgo.train.collate import SFTCollator
    from virgo.train.data import IMAGE_TOKEN
    from virgo.train.modality import DummyImage, needs_vision_every_step
    from virgo.train.packing import rope_index_of

    tok = processor.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    video_id = tok.convert_tokens_to_ids("<|video_pad|>")
    image_id = tok.convert_tokens_to_ids(IMAGE_TOKEN)
    dummy = None
    text_only = any(not s.images for d in datasets if d is not None for s in d.samples)
    if text_only and needs_vision_every_step(cfg.launch, args.world_size, args.deepspeed):
        dummy = DummyImage.for_processor(processor.image_processor, image_id)
        _say(is_main, "sharded vision tower: a micro-batch without an image gets a 1-token dummy image that does "
                      "not change the loss, so every rank runs the vision tower on every step")
    # nn.DataParallel (one process driving several GPUs) splits every tensor of the batch along dim 0: the flat
    # shift_labels would not follow their rows, so there the logits stay at every position.
    at_labels = cfg.logits_at_labels and args.n_gpu <= 1
    if cfg.logits_at_labels and not at_labels:
        _say(is_main, f"logits_at_labels: off under DataParallel ({args.n_gpu} GPUs in one process; torchrun runs "
                      "one process per GPU and keeps it)")
    return SFTCollator(pad_token_id=pad_id, image_token_id=image_id,
                       video_token_id=video_id if video_id != tok.unk_token_id else None, packing=cfg.packing,
                       rope_index=rope_index_of(model) if cfg.packing else None,
                       dummy_image=dummy, logits_at_labels=at_labels)


def _prepare_output(out: Path, cfg: TrainConfig, info: dict[str, Any], resume: str | None) -> None:
    """The resolved config and run_info.json; logs cut back to the checkpoint resumed from (or cleared)."""
    from virgo.train.callbacks import start_run_dir
    from virgo.train.config import config_yaml

    start_run_dir(out, {CONFIG_NAME: config_yaml(cfg), RUN_INFO_NAME: json.dumps(info, indent=2)}, resume)


def _record_best(out: Path, trainer) -> dict[str, Any] | None:
    """The checkpoint chosen by ``metric_for_best_model``, added to run_info.json."""
    best = best_checkpoint(trainer.args, trainer.state)
    info = json.loads((out / RUN_INFO_NAME).read_text(encoding="utf-8"))
    info["best_checkpoint"] = best
    (out / RUN_INFO_NAME).write_text(json.dumps(info, indent=2), encoding="utf-8")
    if best:
        _say(True, f"best checkpoint by {best['metric']}: {best['checkpoint']} ({best['value']:.4g})")
    return best


def train(cfg: TrainConfig, *, callbacks: Sequence[Any] = ()) -> Path:
    """Fine-tune ``cfg.model_name_or_path`` on ``cfg.train_files``; returns the output directory (a model dir)."""
    from virgo.config import check

    check(cfg)  # a config built in Python (the demo) gets the same checks as one loaded from YAML
    if not cfg.output_dir:
        raise ValueError("output_dir is not set")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from virgo.train.freeze import vision_tower
    from virgo.train.geneval import GenerationEval
    from virgo.train.models import resolve_model
    from virgo.train.plot import plot_loss
    from virgo.train.sequence import data_ranks
    from virgo.train.trainer import SFTTrainer

    check_loggers(cfg.report_to)
    set_up_process(cfg)
    out = Path(cfg.output_dir)
    model_path = resolve_model(cfg.model_name_or_path)
    processor, cfg = _processor_for(with_eval_defaults(cfg), model_path)
    args = runtime_args(cfg)  # before the model: ZeRO-3 partitioned loading
    is_main = args.process_index == 0
    ranks = data_ranks(args.world_size, cfg.sequence_parallel_size)  # before any data is read
    train_set, dev_set, preflight = _data(cfg, processor, is_main)
    model, summary, merger, sharded, group = _model(cfg, model_path, args, ranks, is_main)
    batch_warning = cfg.global_batch_warning(ranks)
    if batch_warning and is_main:
        # Loud on purpose: a wrong global batch trains a different model with no error anywhere else.
        _say(True, "!" * 100, f"WARNING: {batch_warning}", "!" * 100)
        warnings.warn(batch_warning, stacklevel=2)
    # DDP needs to know that parameters may get no gradient: a trainable merger on a text-only batch.
    has_text_only = any(not s.images for s in train_set.samples)
    args.ddp_find_unused_parameters = bool(has_text_only and any(
        p.requires_grad for p in vision_tower(model).parameters()))
    row_sampler = _row_sampler(cfg, train_set, args, is_main)
    collator = _collator(cfg, processor, model, args, (train_set, dev_set), is_main)
    head_loss = _head_loss(cfg, model, collator, is_main)
    gen_eval = GenerationEval.from_config(cfg, processor)
    if gen_eval is not None:
        _say(is_main, gen_eval.describe())

    resume = resolve_resume(cfg)
    if is_main:
        _prepare_output(out, cfg, {
            "model": model_path, "preflight": preflight.to_dict(), "trainable": summary, "merger": merger,
            "chat_template": cfg.chat_template, "world_size": args.world_size, "launch": cfg.launch,
            "fsdp2_sharded_by_virgo": sharded, "vision_every_step": collator.dummy_image is not None,
            "linear_cross_entropy": head_loss is not None, "sequence_parallel_size": cfg.sequence_parallel_size,
            "global_batch": cfg.global_batch(ranks),
            "expected_global_batch": cfg.expected_global_batch, "global_batch_warning": batch_warning,
            "resumed_from": resume, "report_to": args.report_to, "versions": _versions()}, resume)

    trainer = SFTTrainer(
        model=model, args=args, train_dataset=train_set, eval_dataset=dev_set, data_collator=collator,
        processing_class=processor, row_sampler=row_sampler, generation_eval=gen_eval, head_loss=head_loss,
        sequence_group=group,
        callbacks=[JsonlLogCallback(out / LOG_NAME), CheckpointIndexCallback(out / CHECKPOINTS_NAME), *callbacks],
    )
    quiet_trainer_output(trainer)  # one line per logged step in our format, not the Trainer's raw dicts
    trainer.train(resume_from_checkpoint=resume)
    save_final(trainer, cfg, model_path, processor, out)
    if is_main:
        _record_best(out, trainer)
        png = plot_loss(out / LOG_NAME, out / "loss.png")
        _say(True, f"model saved to {out}" + (f"; loss curve {png}" if png else ""))
    return out


if __name__ == "__main__":
    from virgo.train.launch import SFT, rank_main

    rank_main(sys.argv[1:], SFT)
