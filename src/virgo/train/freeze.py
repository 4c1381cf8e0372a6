"""What trains: the vision tower frozen, the merger by explicit choice, full fine-tuning or LoRA on the LLM.

The paper (section 2.1.2) trains "the parameters from the LLM and cross-modal connector while keeping the
parameters in the visual encoder frozen". The released LLaMA-Factory config froze every parameter whose name
contains "visual", and in Qwen2-VL the connector (``visual.merger``) is one of them, so the released run trained
the LLM only. ``train_merger`` picks one of the two, and the choice is logged.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from typing import Any

logger = logging.getLogger(__name__)

# Submodules of the vision tower that project into the language model (Qwen2/2.5-VL: merger; Qwen3-VL adds
# deepstack mergers).
MERGER_NAMES = ("merger", "deepstack_merger_list")
GROUPS = ("vision_tower", "merger", "language_model", "lm_head", "other")


def unwrap(model):
    """The transformers model under a PEFT wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def inner_model(model):
    """The ``Qwen2VLModel``-like module holding the vision tower and the language model."""
    model = unwrap(model)
    return getattr(model, "model", model)


def vision_tower(model):
    visual = getattr(inner_model(model), "visual", None)
    if visual is None:
        raise TypeError(f"{type(model).__name__} has no vision tower at .model.visual (not a Qwen2-VL-family model)")
    return visual


def _is_merger(name: str) -> bool:
    return any(f".{m}." in f".{name}." for m in MERGER_NAMES)


def group_of(param_name: str) -> str:
    """The module group a parameter belongs to (names may carry a PEFT prefix)."""
    if ".visual." in f".{param_name}":
        return "merger" if _is_merger(param_name.split("visual.", 1)[1]) else "vision_tower"
    if "language_model" in param_name:
        return "language_model"
    if "lm_head" in param_name:
        return "lm_head"
    return "other"


def apply_freezing(model, *, freeze_vision_tower: bool, train_merger: bool) -> None:
    """Set ``requires_grad`` on the vision side for full fine-tuning (the LLM stays trainable)."""
    for name, p in vision_tower(model).named_parameters():
        p.requires_grad = train_merger if _is_merger(name) else not freeze_vision_tower


def lora_target_modules(model, pattern: str, top_layers: int | None) -> list[str]:
    """Names of the linear layers matching ``pattern`` (in full), optionally only in the top k decoder layers."""
    import torch

    num_layers = model.config.text_config.num_hidden_layers
    rx = re.compile(pattern)
    names = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or not rx.fullmatch(name):
            continue
        m = re.search(r"language_model\.layers\.(\d+)\.", name)
        if top_layers is not None and (m is None or int(m.group(1)) < num_layers - top_layers):
            continue
        names.append(name)
    if not names:
        raise ValueError(f"lora_target {pattern!r} matches no linear layer of the model")
    return names


def apply_lora(model, cfg):
    """Wrap the model with PEFT LoRA on the language model; the merger is trained in full if ``train_merger``."""
    from peft import LoraConfig, get_peft_model

    if not cfg.freeze_vision_tower:
        raise ValueError("finetuning_type=lora trains the language model only: train the vision tower with "
                         "finetuning_type=full (or keep freeze_vision_tower=true)")
    visual_prefix = next(n for n, m in model.named_modules() if m is vision_tower(model))
    mergers = [n for n, _ in model.named_modules() if n.startswith(visual_prefix + ".")
               and n.rsplit(".", 1)[-1] in MERGER_NAMES] if cfg.train_merger else []
    lora = LoraConfig(
        r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, bias="none",
        target_modules=lora_target_modules(model, cfg.lora_target, cfg.lora_layers),
        modules_to_save=mergers or None,
    )
    return get_peft_model(model, lora)


def trainable_summary(model) -> OrderedDict[str, dict[str, int]]:
    """Trainable and total parameter counts per module group (tied weights counted once)."""
    out: OrderedDict[str, dict[str, int]] = OrderedDict((g, {"trainable": 0, "total": 0}) for g in GROUPS)
    for name, p in model.named_parameters():
        if ".original_module." in name:  # PEFT keeps a frozen copy of each module it trains in full
            continue
        g = out[group_of(name)]
        g["total"] += p.numel()
        if p.requires_grad:
            g["trainable"] += p.numel()
    return OrderedDict((k, v) for k, v in out.items() if v["total"])


def format_summary(summary: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"  {'module':<16}{'trainable':>16}{'total':>16}"]
    for name, c in summary.items():
        lines.append(f"  {name:<16}{c['trainable']:>16,}{c['total']:>16,}")
    t = sum(c["trainable"] for c in summary.values())
    n = sum(c["total"] for c in summary.values())
    lines.append(f"  {'all':<16}{t:>16,}{n:>16,}  ({100 * t / max(n, 1):.2f}% trainable)")
    return lines


def setup_trainable(model, cfg):
    """Apply the config's training scope; returns the (possibly PEFT-wrapped) model."""
    for p in model.parameters():
        p.requires_grad = True
    apply_freezing(model, freeze_vision_tower=cfg.freeze_vision_tower, train_merger=cfg.train_merger)
    if cfg.finetuning_type == "lora":
        model = apply_lora(model, cfg)
    return model
