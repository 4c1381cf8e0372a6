"""How ``virgo train`` starts processes: in-process, torchrun (CPU), or accelerate launch (GPUs, one or many nodes).

The config is loaded once, here; every rank then reads the resolved copy (``OUTPUT_DIR/.launch/train_config.yaml``)
with ``python -m virgo.train.sft --config FILE``, so all ranks run exactly the config that was checked.
On CPU, ``accelerate launch --cpu --num_processes N`` silently runs ONE process (see docs/feasibility.md), so N CPU
processes go through ``torchrun`` and the Trainer's gloo backend, one node or several (``--nnodes``,
``--node_rank``, a static rendezvous at the main process). On GPUs, ``accelerate launch --config_file
recipes/launch/<launch>.yaml`` picks DDP, DeepSpeed ZeRO-3 or FSDP2 (its wrap classes given on the command line from
the model's family). On CPU, ZeRO-3 and FSDP2 also run under torchrun: ZeRO-3 through DeepSpeed's CPU accelerator
over gloo, FSDP2 through torch's ``fully_shard`` applied by `virgo.train.fsdp` (accelerate's FSDP plugin silently
falls back to DDP on CPU).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from virgo.train.config import TrainConfig, resolve_launch

DEFAULT_PORT = 29500


def in_process(cfg: TrainConfig) -> bool:
    return cfg.num_processes == 1 and cfg.num_machines == 1 and cfg.launch == "ddp"


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _per_node(cfg: TrainConfig) -> int:
    if cfg.num_processes % cfg.num_machines:
        raise ValueError(f"--num-processes {cfg.num_processes} is not a multiple of --num-machines "
                         f"{cfg.num_machines} (processes are counted over all machines)")
    return cfg.num_processes // cfg.num_machines


def build_command(cfg: TrainConfig, config_file: str | Path, *, cuda: bool | None = None,
                  module: str = "virgo.train.sft") -> list[str]:
    """The command that starts this node's ranks (not used for a single in-process run); ``module`` is each rank's
    entry point (``virgo.rl.grpo`` for ``virgo rl``, whose config has the same launch options)."""
    worker = ["-m", module, "--config", str(config_file)]
    cuda = _has_cuda() if cuda is None else cuda
    multi = cfg.num_machines > 1
    if multi and not cfg.main_process_ip:
        raise ValueError("multi-node: --main-process-ip (rank 0's address) is required")
    if not cuda:
        if cfg.launch not in ("ddp", "zero3", "fsdp2"):
            raise ValueError(f"on CPU --launch must be ddp, zero3 or fsdp2, not an accelerate config ({cfg.launch})")
        if cfg.launch == "zero3" and importlib.util.find_spec("deepspeed") is None:
            raise ValueError("--launch zero3 needs DeepSpeed: pip install --no-build-isolation 'virgo[deepspeed]'")
        run = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={_per_node(cfg)}"]
        if multi:
            port = cfg.main_process_port or DEFAULT_PORT
            return [*run, f"--nnodes={cfg.num_machines}", f"--node_rank={cfg.machine_rank}",
                    f"--master_addr={cfg.main_process_ip}", f"--master_port={port}", *worker]
        return [*run, "--standalone", *worker]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(resolve_launch(cfg.launch)),
           "--num_processes", str(cfg.num_processes), "--num_machines", str(cfg.num_machines)]
    if cfg.launch == "fsdp2":
        # accelerate's FSDP2 wraps modules of these classes: the family's units (vision blocks, the vision tower,
        # decoder layers), read from the model's config, not names written for one family in the YAML.
        from virgo.train.fsdp import wrap_class_names
        from virgo.train.models import resolve_model

        classes = wrap_class_names(resolve_model(cfg.model_name_or_path))
        cmd += ["--fsdp_transformer_layer_cls_to_wrap", ",".join(classes)]
    if multi:
        cmd += ["--machine_rank", str(cfg.machine_rank), "--main_process_ip", cfg.main_process_ip]
    if cfg.main_process_port:
        cmd += ["--main_process_port", str(cfg.main_process_port)]
    return cmd + worker


def run(cfg: Any, *, dry_run: bool = False, stage: Stage | None = None) -> int:
    """Launch the run (``virgo train``, or another stage such as ``virgo rl``); returns the exit code."""
    stage = stage or SFT
    if in_process(cfg) and not dry_run:
        stage.train()(cfg)  # its start-of-run summary states the global batch
        return 0
    print(cfg.describe_global_batch(cfg.num_processes), flush=True)
    warning = cfg.global_batch_warning(cfg.num_processes)
    if warning:  # said before any rank starts (and by --dry-run); the main rank repeats it in its summary
        print(f"WARNING: {warning}", flush=True)
    if in_process(cfg):
        print(f"in-process: {stage.module}.train(cfg)")
        return 0
    config_file = Path(cfg.output_dir) / ".launch" / stage.config_name
    cmd = build_command(cfg, config_file, module=stage.module)
    print("launching:", shlex.join(cmd), flush=True)
    if dry_run:
        return 0
    from virgo.train.models import resolve_model

    resolve_model(cfg.model_name_or_path)  # build a tiny model once, before the ranks
    config_file.parent.mkdir(parents=True, exist_ok=True)
    # Every node of a multi-node run writes this file (a shared output folder): write whole files only, so no rank
    # ever reads one half-written by another node.
    tmp = config_file.with_name(f".{config_file.name}.{os.getpid()}.tmp")
    stage.dump(cfg, tmp)
    os.replace(tmp, config_file)
    return subprocess.call(cmd)


@dataclass(frozen=True)
class Stage:
    """What `run` starts: the module every rank runs (``python -m MODULE --config FILE``, its ``train(cfg)``), the
    module of its config (``load_config`` / ``dump_config``) and the name of the resolved config the ranks read."""

    module: str
    config_module: str
    config_name: str

    def train(self) -> Callable[[Any], Any]:
        return importlib.import_module(self.module).train

    def load(self, path: str | Path, overrides: list[str], **cli: Any) -> Any:
        return importlib.import_module(self.config_module).load_config(path, overrides, **cli)

    def dump(self, cfg: Any, path: Path) -> None:
        importlib.import_module(self.config_module).dump_config(cfg, path)


SFT = Stage("virgo.train.sft", "virgo.train.config", "train_config.yaml")
RL = Stage("virgo.rl.grpo", "virgo.rl.config", "rl_config.yaml")


def rank_main(argv: list[str] | None, stage: Stage) -> None:
    """Each rank's entry point (``python -m STAGE_MODULE --config FILE``): the resolved config the launcher wrote,
    or any recipe, with ``key=value`` overrides."""
    ap = argparse.ArgumentParser(prog=f"python -m {stage.module}", description=f"one rank of {stage.module}")
    ap.add_argument("--config", required=True, help="recipe YAML path or packaged recipe name")
    ap.add_argument("overrides", nargs="*", help="key=value overrides")
    a = ap.parse_args(argv)
    stage.train()(stage.load(a.config, a.overrides))
    close_process_group()


def close_process_group() -> None:
    """Destroy the rank's process group before the interpreter shuts down.

    Why: a rank that exits with its gloo group alive can abort in C++ teardown after a finished run ("terminate
    called without an active exception", SIGABRT, so torchrun reports the run failed): gloo's worker threads still
    hold work objects whose tensors reach back into a half-finalised interpreter (pytorch/pytorch#179291, which
    proposed doing this in torch at exit and was abandoned). Seen once in CI on the FSDP2 resume test. Only after
    success (a failing rank exits anyway, and torchrun stops its peers), and after a barrier: no rank closes its
    connections while another may still be receiving the last collective's data.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
