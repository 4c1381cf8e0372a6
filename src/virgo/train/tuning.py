"""The options every training stage shares (SFT's `TrainConfig`, RL's `RLConfig`): which model, how its prompts and
images are fed, what trains, and how the processes are launched.

Each stage's config is a library config (TRL's ``SFTConfig`` / ``GRPOConfig``) plus these mixins, so a key such
as ``lora_rank`` or ``freeze_vision_tower`` is declared once and means the same in ``virgo train`` and ``virgo rl``;
`virgo.train.freeze`, `virgo.train.sft` and `virgo.train.launch` read them from either config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from virgo.config import ConfigError
from virgo.config.fields import opt

FINETUNING_TYPES = ("full", "lora")
LAUNCHES = ("ddp", "zero3", "fsdp2")
DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class ModelTuning:
    """The model, its prompt and image inputs, and what of it trains."""

    # --- model and inputs
    model_name_or_path: str = opt("", help="Model directory or hub id; tiny:[FAMILY:]SIZE[:SEED] builds (and caches) "
                                  "a tiny random model, e.g. tiny:xs or tiny:qwen3_vl:xs.")
    prompt: str = opt("plain", help="User prompt prefix by name (templates/prompts: plain, think-boxed, still2) or "
                      "path.")
    system: str | None = opt(None, help="System prompt; null = the chat template's default.")
    chat_template: str = opt("auto", aliases=["template"], help="Chat template by name (templates/chat: qwen2vl, "
                             "qwen2_5vl, qwen3vl), path to a .jinja, or auto (the model family's official template "
                             "with the thought markers); saved with the model.")
    image_max_pixels: int | None = opt(512 * 512, ge=1, help="Images are resized to at most this many pixels (the "
                                       "paper: 512x512).")
    image_min_pixels: int | None = opt(None, ge=1, help="... and at least this many; null = the processor's own "
                                       "limit.")
    dtype: str = opt("float32", choices=DTYPES, aliases=["torch_dtype"], help="Dtype the weights are loaded in "
                     "(bf16 autocast is --bf16).")
    attn_implementation: str | None = opt(None, help="sdpa | eager | flash_attention_2; null = transformers' "
                                          "default.")

    # --- what trains
    freeze_vision_tower: bool = opt(True, help="Freeze the vision encoder (the paper does).")
    train_merger: bool = opt(True, help="Train the vision-language merger (the paper's text) or freeze it (the "
                             "released config).")
    finetuning_type: str = opt("full", choices=FINETUNING_TYPES, help="full, or lora (LoRA on the language model; "
                               "the merged model is saved).")
    lora_rank: int = opt(16, ge=1, help="LoRA rank.")
    lora_alpha: int = opt(32, ge=1, help="LoRA alpha.")
    lora_dropout: float = opt(0.0, ge=0, lt=1, help="LoRA dropout.")
    lora_target: str = opt("auto", help="Regex on module names, matched in full; auto = the model family's language "
                           "model linears (never the vision tower).")
    lora_layers: int | None = opt(None, ge=1, help="LoRA only on the top k decoder layers.")

    def check_tuning(self) -> None:
        """The cross-field rules of these options (called from each stage's ``validate``)."""
        if self.image_min_pixels and self.image_max_pixels and self.image_min_pixels > self.image_max_pixels:
            raise ConfigError("image_min_pixels must not exceed image_max_pixels")
        if self.chat_template != "auto":
            from virgo.prompts import load_chat_template

            try:
                load_chat_template(self.chat_template)  # a typo fails here, not after the model has loaded
            except ValueError as e:
                raise ConfigError(f"chat_template: {e}") from None


@dataclass
class LaunchOptions:
    """How many processes run the stage, on how many machines, and how they share the model."""

    torch_threads: int | None = opt(None, ge=1, help="torch.set_num_threads per process; null = leave as is.")
    cpu_heap_keep_mib: int = opt(256, ge=0, help="Training on CPU (glibc): allocations up to this many MiB come "
                                 "from the heap, and freed memory stays there for the next step, instead of a fresh "
                                 "mmap (page faults, zeroed pages) per large tensor per step: 1.1x tokens/s on the "
                                 "tiny model (benchmarks/train_packing.py), a few % more RSS. 0 = glibc's default; "
                                 "GPU runs are left alone.")
    progress: bool = opt(True, help="Progress bars (tokenizing and training); the loss still goes to the JSONL "
                         "log.")
    launch: str = opt("ddp", help="How several processes share the work: ddp, zero3 (DeepSpeed ZeRO-3), fsdp2 "
                      "(torch fully_shard), or a path to an accelerate config.")
    num_processes: int = opt(1, ge=1, short="-n", help="Processes in total, over all machines. > 1 on CPU runs "
                             "torchrun + gloo; on GPUs accelerate launch.")
    num_machines: int = opt(1, ge=1, help="Nodes of a multi-node run (run the same command on each).")
    machine_rank: int = opt(0, ge=0, help="This node's rank (0 .. num_machines - 1).")
    main_process_ip: str | None = opt(None, help="Address of the rank-0 node (multi-node).")
    main_process_port: int | None = opt(None, ge=1, le=65535, help="Port of the rank-0 node.")

    def check_launch(self) -> None:
        if self.launch not in LAUNCHES and Path(self.launch).suffix not in (".yaml", ".yml", ".json"):
            raise ConfigError(f"launch={self.launch!r}: one of {', '.join(LAUNCHES)} or a path to an accelerate "
                              "config")

    # Kept from the old config's API: the global batch is what the paper calls the batch size.
    def global_batch(self, world_size: int) -> int:
        """Samples per optimizer step over all processes."""
        return world_size * self.per_device_train_batch_size * self.gradient_accumulation_steps

    def describe_global_batch(self, world_size: int) -> str:
        return (f"global batch {self.global_batch(world_size)} = {world_size} process(es) x "
                f"{self.per_device_train_batch_size} per device x {self.gradient_accumulation_steps} accumulation")

    def global_batch_warning(self, world_size: int) -> str | None:
        """Why the launch does not give ``expected_global_batch`` and how to fix it; None when it does."""
        want = getattr(self, "expected_global_batch", None)  # declared by stages that check it (train)
        if want is None or self.global_batch(world_size) == want:
            return None
        per_process = self.per_device_train_batch_size * self.gradient_accumulation_steps
        fixes = []
        if want % per_process == 0:
            fixes.append(f"launch {want // per_process} processes")
        if want % (world_size * self.per_device_train_batch_size) == 0:
            fixes.append(f"set gradient_accumulation_steps={want // (world_size * self.per_device_train_batch_size)}")
        fix = " or ".join(fixes) or "change the processes, per-device batch or accumulation"
        return (f"{self.describe_global_batch(world_size)}, but this recipe was written for a global batch of "
                f"{want} (its learning rate and schedule assume it): {fix}, or set expected_global_batch=null "
                f"to silence this")


@dataclass
class RunDefaults:
    """Where TRL's and transformers' defaults do not suit a Virgo run: the run directory is required and short,
    logs go to TensorBoard, a rerun resumes, no mixed precision or activation checkpointing unless asked (TRL's
    configs turn both on), and a config written for GPUs still loads on a CPU.

    Listed first among a config's bases, so that these declarations replace the library's fields of the same names.
    """

    output_dir: str | None = opt(None, path=True, short="-o", help="The run directory: checkpoints, final model, "
                                 "logs.")
    activation_checkpointing: bool | None = opt(None, help="Recompute activations in the backward pass (memory for "
                                                "time). null = off.")
    gradient_checkpointing: bool | None = opt(None, help="The older name of activation_checkpointing (LLaMA-Factory, "
                                              "transformers < 5); still read, with transformers' deprecation warning.")
    bf16: bool = opt(False, help="bf16 mixed precision (fp32 master weights).")
    report_to: str | list[str] | None = opt("tensorboard", help="Loggers: tensorboard (into OUTPUT_DIR/runs), "
                                            "wandb, none, ... (transformers' report_to).")
    resume_from_checkpoint: str | None = opt("auto", help="auto (the last checkpoint in output_dir, if any), none, "
                                             "or a checkpoint path.")
    gradient_checkpointing_kwargs: dict[str, Any] | str | None = opt(None, help="Extra keywords for activation "
                                                                     "checkpointing (JSON or a YAML mapping).")


    def __post_init__(self) -> None:
        # Without an accelerator TrainingArguments refuses bf16 unless use_cpu is set; a recipe written for GPUs
        # must still load here (to check it, print it, dry-run its launch), and training on CPU needs use_cpu.
        if not self.use_cpu and not has_accelerator():
            self.use_cpu = True
        if self.report_to is None or self.report_to == [None]:  # YAML reads `report_to: none` as null
            self.report_to = "none"
        super().__post_init__()


def has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())
