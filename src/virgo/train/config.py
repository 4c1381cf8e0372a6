"""The training config: one dataclass, loaded from a YAML recipe with ``key=value`` overrides.

Precedence is defaults < YAML < command line. Values on the command line are parsed as YAML scalars, so
``bf16=false``, ``max_steps=0``, ``system=null`` and ``train_files=[a.jsonl,b.jsonl]`` mean what they say.
Unknown keys are errors (with a suggestion), in the YAML and on the command line alike.

Recipes and launch configs are found by name (``tiny-cpu``, ``zero3``) in the package's ``recipes/`` directory
(the repository's top-level ``recipes`` is a link to it), or by path.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from virgo.prompts import DEFAULT_CHAT_TEMPLATE, load_chat_template

LAUNCHES = ("ddp", "zero3", "fsdp2")
OVERLONG = ("drop", "truncate")
FINETUNING_TYPES = ("full", "lora")
SAVE_STRATEGIES = ("epoch", "steps", "no")
DTYPES = ("float32", "bfloat16", "float16")
# Linear layers of the Qwen2 language model; the vision tower's linears (qkv, proj, fc1, fc2, mlp.0/2) never match.
DEFAULT_LORA_TARGET = r".*language_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"


class ConfigError(ValueError):
    """A bad recipe or override: names the source (file or command line) and the key."""


@dataclass
class TrainConfig:
    """Everything one SFT run needs. Field comments are the ``--help`` text of the matching override."""

    # --- model and data
    model_name_or_path: str = ""  # HF dir or hub id; "tiny:xs" / "tiny:s" builds (and caches) a tiny random model
    train_files: list[str] = field(default_factory=list)  # JSONL of LongThoughtExample / SFTExample records
    output_dir: str = ""  # the run directory: checkpoints, final model, logs
    max_samples: int | None = None  # use only the first N examples (after reading all files)
    prompt: str = "plain"  # user prompt prefix by name (templates/prompts) or path; see recipes/README.md
    system: str | None = None  # system prompt; None = the chat template's default
    chat_template: str = DEFAULT_CHAT_TEMPLATE  # by name (templates/chat) or path to a .jinja; saved with the model
    cutoff_len: int = 32768  # max tokens per sample, image tokens included
    overlong: str = "drop"  # samples over cutoff_len: drop, or truncate the response (never image tokens)
    image_max_pixels: int | None = 512 * 512  # images are resized to at most this many pixels (the paper: 512x512)
    image_min_pixels: int | None = None  # ... and at least this many; None = the processor's own limit
    torch_dtype: str = "float32"  # dtype the weights are loaded in (bf16 autocast is `bf16`)
    attn_implementation: str | None = None  # sdpa | eager | flash_attention_2; None = transformers' default

    # --- what trains
    freeze_vision_tower: bool = True  # the paper freezes the vision encoder
    train_merger: bool = True  # vision-language merger: trainable (paper text) or frozen (released config)
    finetuning_type: str = "full"  # full | lora (LoRA on the language model; the merged model is saved)
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target: str = DEFAULT_LORA_TARGET  # regex on module names, matched in full
    lora_layers: int | None = None  # LoRA only on the top k decoder layers

    # --- optimisation (mapped 1:1 onto transformers.TrainingArguments)
    learning_rate: float = 7e-6
    num_train_epochs: float = 10.0
    max_steps: int = -1  # > 0 overrides num_train_epochs
    per_device_train_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    # The global batch (processes x per-device batch x accumulation) the recipe's learning rate was set for; a
    # launch that gives another one still runs, with a warning. None = no check.
    expected_global_batch: int | None = None
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    bf16: bool = False
    seed: int = 42
    gradient_checkpointing: bool = False
    packing: bool = False  # padding-free: each micro-batch is one row, positions restart per sample

    # --- checkpoints, logging, runtime
    save_strategy: str = "epoch"  # epoch | steps | no
    save_steps: int = 500
    save_total_limit: int | None = None
    logging_steps: int = 10
    resume_from_checkpoint: str = "auto"  # auto (last checkpoint in output_dir, if any) | none | a checkpoint path
    torch_threads: int | None = None  # torch.set_num_threads per process; None = leave as is
    dataloader_num_workers: int = 0
    progress: bool = True  # progress bars (tokenizing and training); the loss still goes to the JSONL log
    ddp_timeout: int = 1800  # seconds
    launch: str = "ddp"  # ddp | zero3 | fsdp2 (or a path to an accelerate config); used by `virgo train`

    def validate(self) -> TrainConfig:
        checks = [
            ("overlong", OVERLONG), ("finetuning_type", FINETUNING_TYPES), ("save_strategy", SAVE_STRATEGIES),
            ("torch_dtype", DTYPES),
        ]
        for key, choices in checks:
            if getattr(self, key) not in choices:
                raise ConfigError(f"{key}={getattr(self, key)!r}: must be one of {', '.join(choices)}")
        positive = ("cutoff_len", "per_device_train_batch_size", "gradient_accumulation_steps", "logging_steps",
                    "save_steps", "lora_rank")
        for key in positive:
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key}={getattr(self, key)}: must be > 0")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"warmup_ratio={self.warmup_ratio}: must be in [0, 1)")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate={self.learning_rate}: must be > 0")
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise ConfigError("set num_train_epochs > 0 or max_steps > 0")
        for key in ("lora_layers", "max_samples", "image_max_pixels", "image_min_pixels", "torch_threads",
                    "expected_global_batch"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise ConfigError(f"{key}={value}: must be > 0 or null")
        if self.image_min_pixels and self.image_max_pixels and self.image_min_pixels > self.image_max_pixels:
            raise ConfigError("image_min_pixels must not exceed image_max_pixels")
        if self.launch not in LAUNCHES and Path(self.launch).suffix not in (".yaml", ".yml", ".json"):
            raise ConfigError(f"launch={self.launch!r}: one of {', '.join(LAUNCHES)} "
                              "or a path to an accelerate config")
        try:
            load_chat_template(self.chat_template)  # a typo fails here, not after the model has loaded
        except ValueError as e:
            raise ConfigError(f"chat_template: {e}") from None
        return self

    def global_batch(self, world_size: int) -> int:
        """Samples per optimizer step over all processes: what the paper calls the batch size."""
        return world_size * self.per_device_train_batch_size * self.gradient_accumulation_steps

    def describe_global_batch(self, world_size: int) -> str:
        return (f"global batch {self.global_batch(world_size)} = {world_size} process(es) x "
                f"{self.per_device_train_batch_size} per device x {self.gradient_accumulation_steps} accumulation")

    def global_batch_warning(self, world_size: int) -> str | None:
        """Why the launch does not give ``expected_global_batch`` and how to fix it; None when it does."""
        want = self.expected_global_batch
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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_HINTS = typing.get_type_hints(TrainConfig)


def _coerce(key: str, value: Any, source: str) -> Any:
    """Check ``value`` against the field's annotation; YAML's string-typed '7e-6' becomes a float."""
    tp = _HINTS[key]
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(f"{source}: {key} may not be null")
    base = next(a for a in args if a is not type(None))
    if typing.get_origin(base) is list:
        items = value if isinstance(value, list) else [value]  # one path is a list of one
        if not all(isinstance(v, (str, os.PathLike)) for v in items):
            raise ConfigError(f"{source}: {key} must be a list of strings, got {value!r}")
        return [str(v) for v in items]
    if base is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be true or false, got {value!r}")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {key} must be an integer, got {value!r}")
        return value
    if base is float:
        if isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{source}: {key} must be a number, got {value!r}") from None
    if base is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{source}: {key} must be a string, got {value!r}")
        return str(value)
    raise AssertionError(f"unhandled type {tp} for {key}")


def _unknown(key: str, source: str) -> ConfigError:
    close = difflib.get_close_matches(key, FIELDS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"{source}: unknown key {key!r}{hint}")


def _yaml_load(text: str) -> Any:
    """YAML with YAML 1.2 booleans: only true/false are bools, so ``save_strategy: no`` stays the string "no"."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    bool_tag = "tag:yaml.org,2002:bool"
    Loader.yaml_implicit_resolvers = {
        ch: [(tag, rx) for tag, rx in resolvers if tag != bool_tag]
        for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver(bool_tag, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    return yaml.load(text, Loader=Loader)  # noqa: S506 (a SafeLoader subclass)


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` with the value parsed as YAML (``false``, ``0``, ``null``, ``[a, b]``)."""
    import yaml

    key, sep, raw = text.partition("=")
    key = key.strip().lstrip("-").replace("-", "_")
    if not sep or not key:
        raise ConfigError(f"override {text!r}: expected key=value")
    try:
        value = _yaml_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw  # not YAML (e.g. an unbalanced bracket in a regex): keep the text
    return key, value


def _packaged(kind: str) -> Path:
    return Path(str(resources.files("virgo") / "recipes")) / kind


def recipes_dir() -> Path:
    return _packaged("")


def available_recipes() -> list[str]:
    return sorted(p.stem for p in recipes_dir().glob("*.yaml"))


def resolve_recipe(name_or_path: str | Path) -> Path:
    """A recipe by path, or by name (``tiny-cpu``) from the packaged recipes."""
    p = Path(name_or_path)
    if p.exists():
        return p
    f = recipes_dir() / f"{name_or_path}.yaml"
    if f.exists():
        return f
    raise ConfigError(f"no recipe {str(name_or_path)!r}: not a file, and not one of {', '.join(available_recipes())}")


def resolve_launch(name_or_path: str | Path) -> Path:
    """An accelerate launch config by name (``ddp``, ``zero3``, ``fsdp2``) or by path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    f = _packaged("launch") / f"{name_or_path}.yaml"
    if f.exists():
        return f
    raise ConfigError(f"no launch config {str(name_or_path)!r}: one of {', '.join(LAUNCHES)} or a path to a .yaml")


def _absolute(files: list[str], base: Path) -> list[str]:
    """Paths made absolute against ``base``, so the resolved config means the same from any directory."""
    return [str((base / Path(f).expanduser()).resolve()) for f in files]


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Defaults < YAML recipe (``path``, a file or a packaged recipe name) < ``key=value`` overrides."""
    import yaml

    values: dict[str, Any] = {}
    if path is not None:
        recipe = resolve_recipe(path)
        try:
            data = _yaml_load(recipe.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{recipe}: not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{recipe}: expected a mapping of key: value")
        for key, value in data.items():
            if key not in FIELDS:
                raise _unknown(key, str(recipe))
            values[key] = _coerce(key, value, str(recipe))
        if "train_files" in values:  # relative to the recipe file, like image paths in a JSONL file
            values["train_files"] = _absolute(values["train_files"], recipe.resolve().parent)
    for text in overrides:
        key, value = parse_override(text)
        if key not in FIELDS:
            raise _unknown(key, "command line")
        values[key] = _coerce(key, value, "command line")
        if key == "train_files":  # relative to the current directory
            values[key] = _absolute(values[key], Path.cwd())
    try:
        return TrainConfig(**values).validate()
    except ConfigError as e:
        raise ConfigError(f"{path or 'config'}: {e}") from None


def dump_config(cfg: TrainConfig, path: str | Path) -> None:
    import yaml

    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8")


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
