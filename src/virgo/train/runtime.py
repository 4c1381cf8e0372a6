"""What only this machine and this launch decide about a run: the Trainer's runtime arguments (device, backend,
DeepSpeed config), the evaluation schedule a dev set implies, the loggers that must be installed, and FSDP2 sharding
when accelerate does not do it.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from virgo.train.config import TrainConfig
from virgo.train.tuning import LaunchOptions

DEEPSPEED_ZERO3 = "ds_z3.json"


def deepspeed_config(cfg: TrainConfig) -> str | None:
    """The DeepSpeed JSON for a ZeRO-3 run, given to TrainingArguments before the model loads (so weights load
    already partitioned)."""
    if cfg.launch != "zero3":
        return None
    return str(Path(str(resources.files("virgo") / "recipes" / "launch" / DEEPSPEED_ZERO3)))


def init_cpu_deepspeed(launch: str) -> None:
    """DeepSpeed's CPU runtime (ZeRO-3 under torchrun on CPU): its own process group must exist before the ZeRO-3
    config reads the world size. On GPUs accelerate's DeepSpeed launcher does this."""
    import torch

    if launch == "zero3" and int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available():
        import deepspeed

        deepspeed.init_distributed(dist_backend="gloo")


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory(mib: int) -> bool:
    """Serve allocations up to ``mib`` MiB from glibc's heap and keep up to twice that freed at its top.

    Why: torch's CPU allocator does not cache. By default glibc maps every large tensor (activations, logits, their
    gradients) with a fresh ``mmap`` and unmaps it when freed, so each training step faults in and zeroes the same
    pages again; kept in the heap, the next step reuses them. tcmalloc or jemalloc via ``LD_PRELOAD`` (what Intel's
    CPU launcher does) do the same but must be set before the process starts; ``mallopt`` works from here. Returns
    whether glibc took the setting (False elsewhere: musl, macOS, Windows).
    """
    import ctypes
    import platform

    if mib <= 0 or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    limit = mib << 20
    return bool(libc.mallopt(M_MMAP_THRESHOLD, limit)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2 * limit))


def set_up_process(cfg: LaunchOptions) -> None:
    """Per-process settings of a training stage (SFT or RL: ``LaunchOptions``), before its model loads: torch's
    thread count, on CPU the heap kept between steps (`keep_freed_memory`) and DeepSpeed's process group for ZeRO-3
    (`init_cpu_deepspeed`)."""
    import torch

    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    if not torch.cuda.is_available():
        keep_freed_memory(cfg.cpu_heap_keep_mib)
    init_cpu_deepspeed(cfg.launch)


def runtime_overrides(cfg) -> dict:
    """What only this machine and launch decide, for SFT's and RL's configs alike (both are TRL configs, both
    Trainer arguments): checkpointing spelled once, the backend and DeepSpeed config for this launch, the log."""
    import torch

    cuda = torch.cuda.is_available()
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    checkpointing = bool(cfg.activation_checkpointing)
    return {
        "activation_checkpointing": checkpointing,
        "gradient_checkpointing": None,  # resolved into activation_checkpointing: no second warning
        "activation_checkpointing_kwargs": (cfg.activation_checkpointing_kwargs or {"use_reentrant": False})
        if checkpointing else None,
        "gradient_checkpointing_kwargs": None,
        "logging_first_step": True,
        "disable_tqdm": not cfg.progress,
        "dataloader_pin_memory": cuda and cfg.dataloader_pin_memory,
        "ddp_backend": cfg.ddp_backend or ("gloo" if distributed and not cuda else None),
        "deepspeed": cfg.deepspeed or deepspeed_config(cfg),
        "resume_from_checkpoint": None,  # resolved by `resolve_resume`, passed to train()
    }


def runtime_args(cfg: TrainConfig) -> TrainConfig:
    """The config as the Trainer runs it: what only this machine and launch decide (device, backend, DeepSpeed
    config, label names) set on a copy. The config is TRL's SFTConfig, so nothing else is mapped."""
    import dataclasses

    import torch

    return dataclasses.replace(cfg, **runtime_overrides(cfg), label_names=["labels"],
                               use_cpu=not torch.cuda.is_available())


# report_to names whose package is optional: a missing one fails before the model loads, naming the fix.
LOGGER_PACKAGES = {"wandb": "wandb", "tensorboard": "tensorboard", "mlflow": "mlflow", "trackio": "trackio"}


def check_loggers(report_to) -> None:
    import importlib.util

    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    for name in names:
        package = LOGGER_PACKAGES.get(name)
        if package and importlib.util.find_spec(package) is None:
            raise ValueError(f"report_to={name}: the {package} package is not installed (pip install {package}), "
                             "or set report_to=tensorboard / none")


def with_eval_defaults(cfg: TrainConfig) -> TrainConfig:
    """With a dev set and no ``eval_strategy``: evaluate whenever a checkpoint is saved (per epoch by default, as
    the paper selected its checkpoint), so every checkpoint has its dev loss."""
    import dataclasses

    if not cfg.has_dev_set or cfg.eval_strategy != "no":
        return cfg
    strategy = "epoch" if cfg.save_strategy == "no" else str(getattr(cfg.save_strategy, "value", cfg.save_strategy))
    if strategy == "best":
        strategy = "epoch"
    return dataclasses.replace(cfg, eval_strategy=strategy, eval_steps=cfg.eval_steps or cfg.save_steps)


def shard_for_fsdp2(model, cfg: TrainConfig, args):
    """``launch=fsdp2`` with several ranks and no accelerate FSDP plugin (CPU, torchrun): torch's ``fully_shard``
    on the family's units here (`virgo.train.fsdp`); on GPUs accelerate's plugin shards it inside the Trainer."""
    if cfg.launch != "fsdp2" or args.world_size <= 1 or os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true":
        return model, False
    from virgo.train.fsdp import shard

    return shard(model, device=args.device, bf16=cfg.bf16), True
