"""GRPO of a Qwen VL model on Problem records, with the grader as the verifiable reward, on TRL's GRPOTrainer.

``train(cfg)`` runs in the current process; under ``torchrun`` / ``accelerate launch`` the same function runs in
every rank (``virgo rl`` launches it as ``python -m virgo.rl.grpo --config RESOLVED.yaml``, as ``virgo train``
launches SFT). What is Virgo's here: the model set up as SFT sets it up (family chat template, image pixel limits,
vision tower frozen, merger by choice, full or LoRA: `virgo.train.freeze`), the prompts (`virgo.rl.data`), the
rewards (`virgo.rl.rewards`), the mixed image/text fix (`virgo.rl.trainer`), and the run folder.

Outputs in ``output_dir``: the final model (safetensors + processor + chat template; with LoRA the merged model and
the adapter in ``adapter/``), ``checkpoint-N/`` every ``save_steps``, ``rl_config.yaml`` (the resolved config),
``run_info.json``, ``train_log.jsonl`` (one record per logged step: reward mean/std per reward, accuracy, format
rate, thought tokens, KL, clip fraction, completion lengths ...), ``checkpoints.jsonl``, TensorBoard logs in
``runs/``. Running the same command again resumes from the last checkpoint (``resume_from_checkpoint=auto``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the config module imports TRL; grading workers re-import this module (``-m``) and stay light
    from virgo.rl.config import RLConfig

CONFIG_NAME = "rl_config.yaml"
RUN_INFO_NAME = "run_info.json"


def _say(is_main: bool, *lines: str) -> None:
    from virgo.train.callbacks import say  # imported late: grading workers re-import this module and stay light

    say(is_main, *lines)


def runtime_args(cfg: RLConfig, rewards) -> RLConfig:
    """The config as GRPOTrainer runs it: what only this machine, this launch and the reward set decide."""
    from virgo.train.runtime import runtime_overrides

    return dataclasses.replace(
        cfg, **cfg.given_batching,  # GRPOConfig derives the generation batch again, for this process count
        **runtime_overrides(cfg),
        reward_weights=rewards.weights(),
        generation_kwargs=_generation_kwargs(cfg),
    )


def check_launch(args, problems, *, cuda: bool | None = None) -> None:
    """Refuse the combinations that would hang the ranks (a clear error now, not a silent wait later), or would not
    be what they say. (ZeRO-3 and FSDP2 with text-only prompts are fine: `virgo.rl.trainer.VisionEveryForward`.)"""
    import torch

    cuda = torch.cuda.is_available() if cuda is None else cuda
    if args.launch == "fsdp2" and args.world_size > 1 and not cuda:
        # SFT shards with torch's fully_shard itself on CPU (virgo.train.fsdp); GRPO gets FSDP2 from accelerate's
        # plugin, which needs GPUs: on CPU the ranks would run unsharded DDP under the name fsdp2
        raise ValueError("virgo rl: launch=fsdp2 needs GPUs (accelerate's FSDP2 plugin); on CPU use launch=zero3 "
                         "(DeepSpeed's CPU runtime) or launch=ddp")
    text_only = any(not p.images for p in problems)
    if not (text_only and args.world_size > 1):
        return
    if args.log_multimodal:
        raise ValueError("log_multimodal=true with several processes and text-only prompts would hang (TRL gathers "
                         "images only on ranks that have some); set log_multimodal=false")


def _generation_kwargs(cfg: RLConfig) -> dict[str, Any] | None:
    """A sampled <|image_pad|> (or another vision token) in a completion has no image features behind it and fails
    the scoring pass; HF generation never samples them. (vLLM takes its own sampling parameters.)"""
    kwargs = dict(cfg.generation_kwargs or {})
    if cfg.use_vllm:
        return kwargs or None
    from virgo.modeling.family import IMAGE_TOKEN

    kwargs.setdefault("suppress_tokens", [IMAGE_TOKEN, "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"])
    return kwargs


def _token_ids(tokenizer, kwargs: dict[str, Any] | None) -> dict[str, Any] | None:
    """``suppress_tokens`` given as token strings -> ids (tokens this tokenizer lacks are left out)."""
    if not kwargs or "suppress_tokens" not in kwargs:
        return kwargs
    ids = []
    for t in kwargs["suppress_tokens"]:
        tid = tokenizer.convert_tokens_to_ids(t) if isinstance(t, str) else int(t)
        if tid is not None and tid != tokenizer.unk_token_id:
            ids.append(tid)
    return {**kwargs, "suppress_tokens": ids}


def prepare_processor(cfg: RLConfig, model_path: str):
    """The processor with the run's chat template and image pixel limits; returns (processor, template name)."""
    from virgo.modeling.family import resolve_chat_template
    from virgo.modeling.images import ImageLimits
    from virgo.modeling.load import load_processor
    from virgo.prompts import load_chat_template

    processor = load_processor(model_path)
    template = resolve_chat_template(cfg.chat_template, model_path)
    processor.chat_template = load_chat_template(template)
    processor.tokenizer.chat_template = processor.chat_template
    limits = ImageLimits.for_processor(processor, cfg.image_min_pixels, cfg.image_max_pixels)
    processor.image_processor.size = limits.size()
    # TRL left-pads the prompt ids, then calls the processor on the prompt texts for the image inputs and token types
    # of the scoring pass: it must pad on the same side, or a visual prompt shorter than another prompt gets its
    # image token types shifted, and its log-probabilities are silently wrong (tests/test_rl_mixed.py).
    processor.tokenizer.padding_side = "left"
    return processor, template


def _write_run_files(cfg: RLConfig, out: Path, info: dict[str, Any], resume: str | None) -> None:
    from virgo.rl.config import config_yaml
    from virgo.train.callbacks import start_run_dir

    start_run_dir(out, {CONFIG_NAME: config_yaml(cfg), RUN_INFO_NAME: json.dumps(info, indent=2)}, resume)


@dataclasses.dataclass
class Run:
    """A run ready to train: the trainer, its rewards (a context manager: the grading workers), and what saving
    the result needs."""

    trainer: Any
    rewards: Any
    cfg: RLConfig
    processor: Any
    model_path: str
    resume: str | None


def build(cfg: RLConfig, *, callbacks: Sequence[Any] = ()) -> Run:
    """Model, processor, prompts, rewards and ``GRPOTrainer`` for ``cfg``; the run folder's files written."""
    from virgo.config import check

    check(cfg)
    if not cfg.output_dir:
        raise ValueError("output_dir is not set")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import set_seed

    from virgo.rl.data import build_dataset, read_problems
    from virgo.rl.rewards import Rewards
    from virgo.rl.trainer import GRPOTrainer
    from virgo.train.callbacks import CHECKPOINTS_NAME, LOG_NAME, CheckpointIndexCallback, JsonlLogCallback
    from virgo.train.freeze import format_summary, setup_trainable, trainable_summary
    from virgo.train.models import resolve_model
    from virgo.train.runtime import set_up_process
    from virgo.train.sft import _load_model, _versions, resolve_resume

    set_up_process(cfg)
    out = Path(cfg.output_dir)
    model_path = resolve_model(cfg.model_name_or_path)
    processor, template = prepare_processor(cfg, model_path)
    if template != cfg.chat_template:
        cfg = dataclasses.replace(cfg, chat_template=template, **cfg.given_batching)  # recorded as resolved
    problems = read_problems(cfg.train_files, profile=cfg.grade.profile_obj(), max_samples=cfg.max_samples)
    rewards = Rewards.for_config(cfg, problems.problems, processor.tokenizer, stop_ids=())
    args = runtime_args(cfg, rewards)
    check_launch(args, problems.problems)
    args.generation_kwargs = _token_ids(processor.tokenizer, args.generation_kwargs)
    is_main = args.process_index == 0

    set_seed(cfg.seed)  # before the model: LoRA's random init must not depend on what ran earlier in the process
    model = setup_trainable(_load_model(cfg, model_path), cfg)
    summary = trainable_summary(model)
    weights = dict(zip([f.__name__ for f in rewards.functions()], rewards.weights(), strict=True))
    _say(is_main, problems.describe(), f"chat template {cfg.chat_template}, prompt {cfg.prompt}",
         f"trainable parameters ({cfg.finetuning_type}; vision tower "
         f"{'frozen' if cfg.freeze_vision_tower else 'trainable'}; merger "
         f"{'trainable' if cfg.train_merger else 'frozen'}):", *format_summary(summary),
         "rewards: " + ", ".join(f"{name} x {w:g}" for name, w in weights.items()),
         cfg.describe_batch(args.world_size))
    if cfg.grade.judge_url:
        _say(is_main, f"accuracy reward: undecided grades go to the LLM judge at {cfg.grade.judge_url}")

    resume = resolve_resume(cfg)
    if is_main:
        info = {"model": model_path, "problems": len(problems.problems), "excluded": problems.excluded,
                "trainable": summary, "chat_template": cfg.chat_template, "world_size": args.world_size,
                "rewards": weights, "batch": cfg.describe_batch(args.world_size), "resumed_from": resume,
                "versions": _versions()}
        _write_run_files(cfg, out, info, resume)

    trainer = GRPOTrainer(
        model=model, reward_funcs=rewards.functions(), args=args,
        train_dataset=build_dataset(problems.problems, prompt=cfg.prompt, system=cfg.system),
        processing_class=processor,
        callbacks=[JsonlLogCallback(out / LOG_NAME), CheckpointIndexCallback(out / CHECKPOINTS_NAME), *callbacks],
    )
    # The finish-reason rule of the rewards is TRL's own: the last id an end-of-turn or the pad token = stopped.
    rewards.stop_ids = (*trainer.eos_token_ids, processor.tokenizer.pad_token_id)
    return Run(trainer, rewards, cfg, processor, model_path, resume)


def train(cfg: RLConfig, *, callbacks: Sequence[Any] = ()) -> Path:
    """GRPO of ``cfg.model_name_or_path`` on ``cfg.train_files``; returns the output directory (a model dir)."""
    from virgo.rl.callbacks import quiet_rl_output
    from virgo.train.sft import save_final

    run = build(cfg, callbacks=callbacks)
    quiet_rl_output(run.trainer)
    with run.rewards:  # the grading workers stop with the run, however it ends
        run.trainer.train(resume_from_checkpoint=run.resume)
    out = Path(run.cfg.output_dir)
    save_final(run.trainer, run.cfg, run.model_path, run.processor, out)
    _say(run.trainer.is_world_process_zero(), f"model saved to {out}")
    return out


if __name__ == "__main__":
    from virgo.train.launch import RL, rank_main

    rank_main(sys.argv[1:], RL)
