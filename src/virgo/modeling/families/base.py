"""The `Family` record: everything Virgo needs to know about one kind of vision-language model.

Each module of this package defines one ``FAMILY``; `virgo.modeling.family` is where the rest of Virgo finds
them (the registry, ``detect``). This module imports no torch or transformers: classes are given by name and
resolved from ``transformers`` on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The language model's attention and MLP projections, matched in full against module names. It never matches the
# vision tower (``model.visual.*`` in the Qwen families) nor the merger or the LM head.
LANGUAGE_MODEL_LINEARS = r".*language_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
IMAGE_TOKEN = "<|image_pad|>"
AUTO = "auto"  # a chat template or LoRA target named "auto" means the family's own


class UnsupportedModelError(ValueError):
    """A model whose config names no supported family."""


@dataclass(frozen=True, eq=False)  # one instance per family: compared and hashed by identity
class Family:
    """One model family. The transformers classes are given by name (see `config_cls`, `model_cls`)."""

    name: str  # registry key; also the transformers model_type ("qwen2_5_vl")
    title: str  # for people: "Qwen2.5-VL"
    config_class: str  # transformers class names
    model_class: str
    processor_class: str  # transformers' own; virgo.modeling.processor.processor_class(family) subclasses it
    chat_template: str  # default chat template, by name in virgo/templates/chat
    build_tiny_config: Callable[..., Any]  # (TinySpec, token ids by token, vocab size) -> a transformers config
    decoder_layer_classes: tuple[str, ...]  # FSDP2 / activation-checkpointing units of the language model
    vision_block_classes: tuple[str, ...]  # ... and of the vision tower
    model_types: tuple[str, ...] = ()  # further config.model_type values of this family (the name always counts)
    vision_attr: str = "visual"  # the vision tower is <inner model>.<vision_attr>
    merger_names: tuple[str, ...] = ("merger",)  # submodules of the tower that project into the language model
    lora_target: str = LANGUAGE_MODEL_LINEARS  # regex on module names, matched in full
    # Keywords the rope-index function takes beyond (input_ids, mm_token_type_ids, image_grid_thw, video_grid_thw,
    # attention_mask); images never need them. Qwen2.5-VL: second_per_grid_ts (seconds per temporal video patch).
    rope_index_extra_kwargs: tuple[str, ...] = ()
    image_token: str = IMAGE_TOKEN
    image_processor_kwargs: dict[str, Any] = field(default_factory=dict)  # tiny models: what the real ones use

    # -- identity -------------------------------------------------------------------------------------------

    def matches(self, config: dict[str, Any]) -> bool:
        """Whether a config (as a dict: ``model_type``, ``architectures``) belongs to this family."""
        if config.get("model_type") in (self.name, *self.model_types):
            return True
        return self.model_class in (config.get("architectures") or ())

    # -- transformers classes, resolved on first use --------------------------------------------------------

    @property
    def config_cls(self) -> type:
        return _transformers_class(self.config_class)

    @property
    def model_cls(self) -> type:
        return _transformers_class(self.model_class)

    def tiny_config(self, spec: Any, token_ids: dict[str, int], vocab_size: int) -> Any:
        """A transformers config of this family at the tiny size ``spec`` (a `virgo.modeling.tiny.TinySpec`), for a
        tokenizer of ``vocab_size`` tokens whose special tokens have ``token_ids`` (by token text)."""
        return self.build_tiny_config(spec, token_ids, vocab_size)

    # -- the parts of a loaded model ------------------------------------------------------------------------

    def inner(self, model: Any) -> Any:
        """The module holding the vision tower and the language model (under a PEFT wrapper too)."""
        get_base = getattr(model, "get_base_model", None)
        model = get_base() if callable(get_base) else model
        return getattr(model, "model", model)

    def vision_tower(self, model: Any) -> Any:
        tower = getattr(self.inner(model), self.vision_attr, None)
        if tower is None:
            raise TypeError(f"{type(model).__name__} has no vision tower at .model.{self.vision_attr} "
                            f"(expected of a {self.title} model)")
        return tower

    def is_merger(self, name_in_tower: str) -> bool:
        """Whether a parameter or module name, relative to the vision tower, is inside a merger."""
        return any(f".{m}." in f".{name_in_tower}." for m in self.merger_names)

    def merger_modules(self, model: Any) -> list[tuple[str, Any]]:
        """(full name, module) of every merger; a list of mergers (Qwen3-VL's deepstack) gives its elements, so
        each can be wrapped on its own (PEFT's modules_to_save) while the list still indexes."""
        import torch

        prefix = self.module_name(model, self.vision_tower(model))
        out = []
        for name, module in self.vision_tower(model).named_children():
            if name not in self.merger_names:
                continue
            if isinstance(module, torch.nn.ModuleList):
                out += [(f"{prefix}.{name}.{i}", m) for i, m in enumerate(module)]
            else:
                out.append((f"{prefix}.{name}", module))
        return out

    def decoder_layers(self, model: Any) -> list[Any]:
        """The language model's decoder layers, in order."""
        return _modules_of(model, self.decoder_layer_classes)

    def vision_blocks(self, model: Any) -> list[Any]:
        """The vision tower's transformer blocks, in order."""
        return _modules_of(model, self.vision_block_classes)

    def fsdp_units(self, model: Any) -> list[Any]:
        """Modules to shard one by one (FSDP2 ``fully_shard``), innermost first; the root comes last, by the caller.

        The vision tower is its own unit: ``generate`` calls it outside the root's forward, and an unwrapped tower
        then mixes DTensor and plain tensors (measured: shared/docs/feasibility.md section 4).
        """
        return [*self.vision_blocks(model), self.vision_tower(model), *self.decoder_layers(model)]

    def rope_index(self, model: Any) -> Callable[..., Any]:
        """The model's own M-RoPE position function (``get_rope_index`` of the inner model, not a copy).

        Called as ``fn(input_ids [B, L], mm_token_type_ids=[B, L], image_grid_thw=[n, 3], attention_mask=None)``
        it returns ``(positions [3, B, L], deltas [B, 1])``; text-only rows need no call (all three axes equal the
        text position). Video adds ``video_grid_thw`` and the family's `rope_index_extra_kwargs`.
        """
        fn = getattr(self.inner(model), "get_rope_index", None)
        if fn is None:
            raise TypeError(f"{type(model).__name__} has no get_rope_index (expected of a {self.title} model)")
        return fn

    @staticmethod
    def module_name(model: Any, module: Any) -> str:
        return next(n for n, m in model.named_modules() if m is module)


def _transformers_class(name: str) -> type:
    return getattr(importlib.import_module("transformers"), name)


def _modules_of(model: Any, class_names: tuple[str, ...]) -> list[Any]:
    return [m for m in model.modules() if type(m).__name__ in class_names]
