"""The training config: TRL's ``SFTConfig`` (and so transformers' ``TrainingArguments``) plus Virgo's own fields.

One dataclass, parsed once by `virgo.config` (the same loader as every stage): ``virgo train --config RECIPE``
reads a YAML recipe (a file, or a packaged name such as ``tiny-cpu`` or ``qwen2vl-7b-virgo``), flags and
``key=value`` overrides go on top, and the result is the ``TrainingArguments`` the Trainer runs with — there is no
hand mapping between a Virgo config and the Trainer's. Every TrainingArguments / SFTConfig option is therefore a
flag (``--eval-strategy``, ``--report-to``, ``--optim`` ...), with its own help.

LLaMA-Factory users can bring their YAML: its names are documented aliases (``cutoff_len`` -> ``max_length``,
``template`` -> ``chat_template``, ``warmup_ratio`` -> ``warmup_steps``, ``torch_dtype`` -> ``dtype``; ``val_size``,
``finetuning_type``, ``lora_rank``, ``lora_target``, ``freeze_vision_tower``, ``image_max_pixels`` are the same
names). Recipes and launch configs are found by name in the package's ``recipes/`` directory (the repository's
top-level ``recipes`` is a link to it), or by path.

Why TRL's config but not ``trl.SFTTrainer`` (measured in benchmarks/train_packing.py and
``../shared/docs/feasibility.md`` §7): SFTTrainer refuses packing and padding-free training for vision data, and
its text-only packing lets samples attend to each other in these models; Virgo's packed rows keep samples apart at
the cost of per-sample attention. So the trainer stays a small ``transformers.Trainer`` subclass
(`virgo.train.trainer`), and the config is TRL's.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

# DeepSpeed (when installed) warns on every import on a machine without a GPU that it "was unable to detect" one;
# say so up front instead (before trl imports transformers, which imports DeepSpeed). No device nodes of NVIDIA,
# AMD or Intel GPUs means CPU.
if "DS_ACCELERATOR" not in os.environ and not glob.glob("/dev/nvidia[0-9]*") + glob.glob("/dev/kfd") + \
        glob.glob("/dev/dri/renderD*"):
    os.environ["DS_ACCELERATOR"] = "cpu"

from trl import SFTConfig  # after the environment above

from virgo.config import ConfigError, load
from virgo.config.fields import opt
from virgo.train.attention import PACKED_ATTENTION
from virgo.train.tuning import LAUNCHES, LaunchOptions, ModelTuning, RunDefaults

OVERLONG = ("drop", "truncate")


@dataclass
class TrainConfig(RunDefaults, SFTConfig, ModelTuning, LaunchOptions):
    """Everything one SFT run needs: Virgo's fields (below, and the model, tuning and launch options shared with
    `virgo rl` in `virgo.train.tuning`), then every SFTConfig / TrainingArguments field."""

    # --- model and data
    train_files: list[str] = opt([], path=True, help="JSONL files of LongThoughtExample / SFTExample records "
                                 "(relative paths in a recipe are relative to the recipe).")
    eval_files: list[str] = opt([], path=True, help="Dev-set JSONL files (same records) for the eval loss; see also "
                                "val_size.")
    val_size: float = opt(0.0, ge=0, help="Hold out part of the training examples as the dev set (seeded): a "
                          "fraction when < 1, a count when >= 1 (LLaMA-Factory's key; the released Virgo config "
                          "used 0.001). 0 = none.")
    max_samples: int | None = opt(None, ge=1, help="Use only the first N examples (after reading all files).")
    max_length: int | None = opt(32768, ge=1, aliases=["cutoff_len"], help="Max tokens per sample, image tokens "
                                 "included (LLaMA-Factory: cutoff_len).")
    overlong: str = opt("drop", choices=OVERLONG, help="Samples over max_length: drop them, or truncate the "
                        "response (never image tokens).")
    decontaminate_against: list[str] = opt([], path=True, help="Folders that may hold benchmark data (DIR/<name> "
                                           "or DIR itself, any registered benchmark): the pre-flight warns about "
                                           "training records that share a 13-gram with one of their items (warnings "
                                           "only). Empty = $VIRGO_BENCH_DIR when set, else no check.")

    # --- dev set and checkpoint selection (with val_size / eval_files, eval_strategy, metric_for_best_model)
    gen_eval_benchmark: str | None = opt(None, help="Generation-based evaluation at every evaluation: a registered "
                                         "benchmark (virgo eval --list) or a Problem JSONL file. The model in "
                                         "training generates on a slice of it and our grader scores it; the "
                                         "accuracy is logged as eval_accuracy (metric_for_best_model may name "
                                         "it). Needs a dev set (val_size or eval_files). Folders of generations "
                                         "and grades: OUTPUT_DIR/gen_eval/step-N.")
    gen_eval_data_dir: str | None = opt(None, path=True, help="Folder with the benchmark's official files "
                                        "(registered benchmarks).")
    gen_eval_split: str | None = opt(None, help="Its split; null = the benchmark's default.")
    gen_eval_limit: int | None = opt(32, ge=1, help="Items per evaluation (a seeded random subset, the same every "
                                     "time); null = all.")
    gen_eval_max_new_tokens: int = opt(2048, ge=1, help="Token limit per generated response.")
    gen_eval_thinking_budget: int | None = opt(None, ge=0, help="Cap on thought tokens while generating (see "
                                               "virgo generate --thinking-budget); null = none.")
    gen_eval_prompt: str | None = opt(None, help="Prompt prefix for the generation; null = the training prompt "
                                      "(prompt), so the model is evaluated as it is trained.")
    gen_eval_batch_size: int = opt(8, ge=1, help="Rows decoded together.")
    gen_eval_profile: str | None = opt(None, help="Grading profile (virgo grade); null = the benchmark's own, or "
                                       "default for a JSONL file.")
    gen_eval_workers: int | None = opt(None, ge=0, help="Grading processes (null = all cores; 0 = in the main "
                                       "process, no time limit).")

    # --- batch and packing
    expected_global_batch: int | None = opt(None, ge=1, help="The global batch (processes x per-device batch x "
                                            "accumulation) the recipe's learning rate was set for; another one "
                                            "still runs, with a loud warning. null = no check.")
    packing: bool = opt(False, help="Padding-free packed rows: samples share a row, each attends only within "
                        "itself, positions restart per sample.")
    packing_budget: int | None = opt(None, ge=1, help="With packing: fill each packed row across samples up to this "
                                     "many tokens (best-fit decreasing, rows visited in a new seeded order each "
                                     "epoch, every sample once per epoch; a sample longer than the budget gets a row "
                                     "alone). A micro-batch is then one row, so per_device_train_batch_size must be "
                                     "1. null: each micro-batch of per_device_train_batch_size samples is one row.")
    sequence_parallel_size: int = opt(1, ge=1, help="Split each packed row over this many consecutive ranks "
                                      "(DeepSpeed-Ulysses sequence parallelism, virgo.train.sequence): each runs "
                                      "the decoder on its share of the row's tokens, attention trades heads for "
                                      "tokens with two all-to-alls. For thoughts too long for one device's "
                                      "activations. Needs packing_budget; the world size must be a multiple of it "
                                      "and the attention heads divisible by it. Data-parallel ranks = world size / "
                                      "this. 1 = off.")
    logits_at_labels: bool = opt(True, help="Run the LM head and the loss only where the next token has a label "
                                 "(prompt and image tokens need no logits; the loss is the same). false: logits at "
                                 "every position, as transformers computes them by default (also what a single "
                                 "process driving several GPUs with DataParallel gets).")
    linear_cross_entropy: bool = opt(False, help="The LM head and the loss as one chunked op (torch's "
                                     "linear_cross_entropy): the tokens x vocabulary logits are never held, a "
                                     "chunk of rows at a time instead (at Qwen2-VL's vocabulary, 20 GB of fp32 "
                                     "logits per 32K-token row otherwise; measured on CPU at that vocabulary: "
                                     "3.4x less peak memory, 1.38x the speed). Needs logits_at_labels and "
                                     "prediction_loss_only.")
    packed_attention: str = opt("auto", choices=PACKED_ATTENTION, help="With packing, how the samples of a row are "
                                "kept apart: flash_varlen (flash-attn's variable-length kernel; needs CUDA, "
                                "flash-attn and bf16 or a half-precision dtype), sdpa_segments (causal SDPA on each "
                                "sample's segment, no L x L mask), block_mask (the whole row under an L x L "
                                "block-diagonal mask, the old path), or auto (flash_varlen where it can run, "
                                "otherwise sdpa_segments). The path taken is logged at the start of training.")

    # --- the paper's recipe where it differs from SFTConfig's defaults
    learning_rate: float = opt(7e-6, gt=0, help="Peak learning rate (the paper: 7e-6).")
    num_train_epochs: float = opt(10.0, help="Epochs (the paper: 10); max_steps > 0 overrides.")
    lr_scheduler_type: str = opt("cosine", help="Learning-rate schedule (transformers' SchedulerType).")
    warmup_steps: float = opt(0.1, ge=0, aliases=["warmup_ratio"], help="Warmup: a fraction of the steps when < 1, "
                              "else a number of steps (the paper: 0.1).")
    per_device_train_batch_size: int = opt(1, ge=1, help="Micro-batch per process.")
    save_strategy: str = opt("epoch", help="When to save a checkpoint: epoch (the paper evaluated epoch 5 of 10), "
                             "steps or no.")
    remove_unused_columns: bool = opt(False, help="Kept false: Virgo's collator needs every field.")
    prediction_loss_only: bool = opt(True, help="Evaluation computes the dev loss only: nothing reads the dev set's "
                                     "logits, which would otherwise be kept (tokens x vocabulary floats) for all of "
                                     "it.")

    def validate(self) -> None:
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise ConfigError("set num_train_epochs > 0 or max_steps > 0")
        self.check_tuning()
        if self.packing_budget is not None and not (self.packing and self.per_device_train_batch_size == 1):
            raise ConfigError("packing_budget needs packing=true and per_device_train_batch_size=1 (a micro-batch is "
                              "one row of up to packing_budget tokens)")
        if self.sequence_parallel_size > 1 and not self.packing_budget:
            raise ConfigError(f"sequence_parallel_size={self.sequence_parallel_size} splits packed rows: set "
                              "packing=true and packing_budget (a micro-batch is then one row)")
        if self.sequence_parallel_size > 1 and self.packed_attention == "block_mask":
            # the split row's attention gets no L x L mask: only the per-sample paths keep samples apart there
            raise ConfigError("sequence_parallel_size > 1 runs the per-sample packed attention on the gathered row: "
                              "use packed_attention auto, sdpa_segments or flash_varlen, not block_mask")
        self.check_launch()
        if self.linear_cross_entropy and not (self.logits_at_labels and self.prediction_loss_only):
            raise ConfigError("linear_cross_entropy needs logits_at_labels=true (its targets) and "
                              "prediction_loss_only=true (the model returns no logits)")
        if self.val_size and self.eval_files:
            raise ConfigError("give val_size or eval_files, not both")
        self.check_selection()

    def compile_warning(self) -> str | None:
        """Why ``torch_compile`` slows packed training down; None when it is off or rows are not packed."""
        if not (self.torch_compile and self.packing):
            return None
        # Every packed row has its own length and sample boundaries, so torch.compile recompiles and breaks its
        # graphs step after step (benchmarks/train_packing.py --modes packed packed_torch_compile).
        return ("torch_compile=true with packing=true: each packed row has its own length and sample boundaries, "
                "so torch.compile keeps recompiling (the tiny model on CPU: 13x slower, 1,853 against 24,254 "
                "tokens/s over 30 steps); set torch_compile=false for packed training")

    @property
    def has_dev_set(self) -> bool:
        return bool(self.val_size or self.eval_files)

    def check_selection(self) -> None:
        """The dev set, generation-based evaluation and best-checkpoint rules."""
        if self.gen_eval_benchmark and not self.has_dev_set:
            raise ConfigError("gen_eval_benchmark runs at each evaluation, which needs a dev set: set val_size or "
                              "eval_files")
        if self.gen_eval_benchmark and not self.gen_eval_benchmark.endswith(".jsonl") and not self.gen_eval_data_dir:
            raise ConfigError(f"gen_eval_benchmark={self.gen_eval_benchmark!r}: a registered benchmark needs "
                              "gen_eval_data_dir (its official files); a Problem JSONL file needs none")
        metric = self.metric_for_best_model
        if metric and not self.has_dev_set:
            raise ConfigError(f"metric_for_best_model={metric!r} needs evaluations: set val_size or eval_files")
        if metric and metric.removeprefix("eval_") in ("accuracy", "correct") and not self.gen_eval_benchmark:
            raise ConfigError(f"metric_for_best_model={metric!r} comes from the generation-based evaluation: set "
                              "gen_eval_benchmark")


def _packaged(kind: str) -> Path:
    return Path(str(resources.files("virgo") / "recipes")) / kind


def recipes_dir() -> Path:
    return _packaged("")


def available_recipes(directory: Path | None = None) -> list[str]:
    return sorted(p.stem for p in (directory or recipes_dir()).glob("*.yaml"))


def resolve_recipe(name_or_path: str | Path, directory: Path | None = None) -> Path:
    """A recipe by path, or by name (``tiny-cpu``) from the packaged recipes (``directory``: another packaged set,
    such as ``recipes/rl`` for `virgo rl`)."""
    p = Path(name_or_path)
    if p.exists():
        return p
    f = (directory or recipes_dir()) / f"{name_or_path}.yaml"
    if f.exists():
        return f
    raise ConfigError(f"no recipe {str(name_or_path)!r}: not a file, and not one of "
                      f"{', '.join(available_recipes(directory))}")


def resolve_launch(name_or_path: str | Path) -> Path:
    """An accelerate launch config by name (``ddp``, ``zero3``, ``fsdp2``) or by path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    f = _packaged("launch") / f"{name_or_path}.yaml"
    if f.exists():
        return f
    raise ConfigError(f"no launch config {str(name_or_path)!r}: one of {', '.join(LAUNCHES)} or a path to a .yaml")


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                **cli: Any) -> TrainConfig:
    """Defaults < YAML recipe (``path``: a file or a packaged recipe name) < ``key=value`` overrides."""
    return load(TrainConfig, config=resolve_recipe(path) if path is not None else None, cli=cli,
                overrides=overrides)


def config_yaml(cfg: TrainConfig) -> str:
    """The resolved config as YAML that `load_config` reads back (library fields only where not default)."""
    from virgo.config.load import dump_yaml, library_changes

    return dump_yaml(cfg, only=library_changes(cfg))


def dump_config(cfg: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(config_yaml(cfg), encoding="utf-8")


def load_launch_config(name_or_path: str | Path) -> dict[str, Any]:
    """Read and sanity-check an accelerate launch config (a mapping with a known ``distributed_type``)."""
    import yaml

    p = resolve_launch(name_or_path)
    data = yaml.safe_load(p.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping")
    known = {"MULTI_GPU", "DEEPSPEED", "FSDP", "MULTI_CPU", "NO"}
    if data.get("distributed_type") not in known:
        raise ConfigError(f"{p}: distributed_type must be one of {sorted(known)}, "
                          f"got {data.get('distributed_type')!r}")
    return data
