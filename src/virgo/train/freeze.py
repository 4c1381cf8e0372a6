"""What trains: the vision tower frozen, the merger by explicit choice, full fine-tuning or LoRA on the LLM.

The paper (section 2.1.2) trains "the parameters from the LLM and cross-modal connector while keeping the
parameters in the visual encoder frozen". The released LLaMA-Factory config froze every parameter whose name
contains "visual", and in Qwen2-VL the connector (``visual.merger``) is one of them, so the released run trained
the LLM only. ``train_merger`` picks one of the two, and the choice is logged.

Which modules are the vision tower and its mergers (Qwen3-VL adds the DeepStack mergers), which are decoder
layers and which linears LoRA targets by default (``lora_target=auto``) come from the model's family
(`virgo.modeling.family`), detected from its config.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from typing import Any

from virgo.modeling.family import AUTO, Family, detect

logger = logging.getLogger(__name__)

GROUPS = ("vision_tower", "merger", "language_model", "lm_head", "other")


def unwrap(model):
    """The transformers model under a PEFT wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def inner_model(model):
    """The module holding the vision tower and the language model (``Qwen2VLModel`` and its like)."""
    return detect(model).inner(model)


def vision_tower(model):
    return detect(model).vision_tower(model)


def group_of(param_name: str, family: Family) -> str:
    """The module group a parameter belongs to (names may carry a PEFT prefix)."""
    tower = f".{family.vision_attr}."
    if tower in f".{param_name}":
        return "merger" if family.is_merger(f".{param_name}".split(tower, 1)[1]) else "vision_tower"
    if "language_model" in param_name:
        return "language_model"
    if "lm_head" in param_name:
        return "lm_head"
    return "other"


def apply_freezing(model, *, freeze_vision_tower: bool, train_merger: bool) -> None:
    """Set ``requires_grad`` on the vision side for full fine-tuning (the LLM stays trainable)."""
    family = detect(model)
    for name, p in family.vision_tower(model).named_parameters():
        p.requires_grad = train_merger if family.is_merger(name) else not freeze_vision_tower


def lora_target_modules(model, pattern: str, top_layers: int | None) -> list[str]:
    """Names of the linear layers matching ``pattern`` (in full; ``auto``: the family's language-model linears),
    optionally only in the top k decoder layers."""
    import torch

    family = detect(model)
    rx = re.compile(family.lora_target if pattern == AUTO else pattern)
    allowed = None
    if top_layers is not None:
        layers = family.decoder_layers(model)
        allowed = {id(m) for layer in layers[len(layers) - top_layers:] for m in layer.modules()}
    names = [name for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear) and rx.fullmatch(name)
             and (allowed is None or id(module) in allowed)]
    if not names:
        where = f" in the top {top_layers} decoder layer(s)" if top_layers is not None else ""
        raise ValueError(f"lora_target {pattern!r} matches no linear layer of the model{where}")
    return names


def apply_lora(model, cfg):
    """Wrap the model with PEFT LoRA on the language model; the merger is trained in full if ``train_merger``."""
    from peft import LoraConfig, get_peft_model

    if not cfg.freeze_vision_tower:
        raise ValueError("finetuning_type=lora trains the language model only: train the vision tower with "
                         "finetuning_type=full (or keep freeze_vision_tower=true)")
    mergers = [name for name, _ in detect(model).merger_modules(model)] if cfg.train_merger else []
    lora = LoraConfig(
        r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, bias="none",
        target_modules=lora_target_modules(model, cfg.lora_target, cfg.lora_layers),
        modules_to_save=mergers or None,
    )
    return get_peft_model(model, lora)


def trainable_summary(model) -> OrderedDict[str, dict[str, int]]:
    """Trainable and total parameter counts per module group (tied weights counted once)."""
    family = detect(model)
    out: OrderedDict[str, dict[str, int]] = OrderedDict((g, {"trainable": 0, "total": 0}) for g in GROUPS)
    for name, p in model.named_parameters():
        if ".original_module." in name:  # PEFT keeps a frozen copy of each module it trains in full
            continue
        g = out[group_of(name, family)]
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
