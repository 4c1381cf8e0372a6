"""How ``virgo train`` starts processes: in-process, torchrun (CPU), or accelerate launch (GPUs, one or many nodes).

Every rank runs ``python -m virgo.train.sft --config R key=value ...`` with the same recipe and overrides, so all
ranks resolve the same config. On CPU, ``accelerate launch --cpu --num_processes N`` silently runs ONE process
(see docs/feasibility.md), so N CPU processes go through ``torchrun --standalone`` and the Trainer's gloo backend.
On GPUs, ``accelerate launch --config_file recipes/launch/<launch>.yaml`` picks DDP, DeepSpeed ZeRO-3 or FSDP2.
On CPU, ZeRO-3 also runs under torchrun (DeepSpeed's CPU accelerator over gloo), for testing the code path.
"""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
import sys
from dataclasses import dataclass

from virgo.train.config import load_config, resolve_launch


@dataclass
class LaunchPlan:
    num_processes: int = 1  # processes in total, over all machines
    launch: str = "ddp"
    num_machines: int = 1
    machine_rank: int = 0
    main_process_ip: str | None = None
    main_process_port: int | None = None
    cuda: bool | None = None  # None = detect

    @property
    def in_process(self) -> bool:
        return self.num_processes == 1 and self.num_machines == 1 and self.launch == "ddp"


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def build_command(plan: LaunchPlan, config: str, overrides: list[str]) -> list[str]:
    """The command that starts every rank of the run (not used for a single in-process run)."""
    worker = ["-m", "virgo.train.sft", "--config", config, *overrides]
    cuda = _has_cuda() if plan.cuda is None else plan.cuda
    if not cuda:
        if plan.num_machines > 1 or plan.launch not in ("ddp", "zero3"):
            raise ValueError("on CPU only --launch ddp or zero3 on one machine is supported (accelerate's FSDP "
                             "plugin silently falls back to DDP on CPU; see recipes/README.md)")
        if plan.launch == "zero3" and importlib.util.find_spec("deepspeed") is None:
            raise ValueError("--launch zero3 needs DeepSpeed: pip install --no-build-isolation 'virgo[deepspeed]'")
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={plan.num_processes}", *worker]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(resolve_launch(plan.launch)),
           "--num_processes", str(plan.num_processes), "--num_machines", str(plan.num_machines)]
    if plan.num_machines > 1:
        if not plan.main_process_ip:
            raise ValueError("multi-node: --main-process-ip (rank 0's address) is required")
        cmd += ["--machine_rank", str(plan.machine_rank), "--main_process_ip", plan.main_process_ip]
    if plan.main_process_port:
        cmd += ["--main_process_port", str(plan.main_process_port)]
    return cmd + worker


def run(plan: LaunchPlan, config: str, overrides: list[str], *, dry_run: bool = False) -> int:
    """Launch the run; returns the exit code."""
    overrides = [*overrides, f"launch={plan.launch}"]
    cfg = load_config(config, overrides)  # fail on a bad config here, not in N processes
    if plan.in_process and not dry_run:
        from virgo.train.sft import train

        train(cfg)  # its start-of-run summary states the global batch
        return 0
    print(cfg.describe_global_batch(plan.num_processes), flush=True)
    warning = cfg.global_batch_warning(plan.num_processes)
    if warning:  # said before any rank starts (and by --dry-run); the main rank repeats it in its summary
        print(f"WARNING: {warning}", flush=True)
    if plan.in_process:
        print(f"in-process: train({cfg})")
        return 0
    cmd = build_command(plan, config, overrides)
    print("launching:", shlex.join(cmd), flush=True)
    if dry_run:
        return 0
    from virgo.train.models import resolve_model

    resolve_model(cfg.model_name_or_path)  # build a tiny model once, before the ranks
    return subprocess.call(cmd)
