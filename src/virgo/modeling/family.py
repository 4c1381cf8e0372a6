"""Model families: which one a model belongs to, and the registry of supported ones.

Training, packing, FSDP wrapping, LoRA, inference and the tiny-model factory ask the model's `Family` instead of
naming classes or module paths themselves, so a new family (InternVL, LLaVA-OneVision, ...) is one module in
``virgo/modeling/families/`` plus one line in its registry, and no ``if family == ...`` anywhere else.

``detect(config_or_model_or_path)`` finds the family from the config's ``model_type`` (or ``architectures``) and
raises `UnsupportedModelError`, naming the supported families, for anything else. Nothing here imports torch or
transformers until a hub id must be resolved: detecting the family of a directory costs a JSON read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from virgo.modeling.families import FAMILIES
from virgo.modeling.families.base import AUTO, IMAGE_TOKEN, LANGUAGE_MODEL_LINEARS, Family, UnsupportedModelError

__all__ = ["AUTO", "IMAGE_TOKEN", "LANGUAGE_MODEL_LINEARS", "Family", "UnsupportedModelError", "detect", "families",
           "family_names", "get_family", "resolve_chat_template", "rope_index_of"]


def families() -> tuple[Family, ...]:
    """Every supported family, in the registry's order (virgo/modeling/families/__init__.py)."""
    return FAMILIES


def family_names() -> list[str]:
    return [f.name for f in families()]


def _supported() -> str:
    return ", ".join(f"{f.title} ({f.name})" for f in families())


def get_family(name: str) -> Family:
    """A family by name; ``qwen2.5-vl``, ``Qwen2_5_VL`` and ``qwen2_5_vl`` are the same name."""
    key = re.sub(r"[-.]", "_", name.strip().lower())
    for f in families():
        if key == f.name:
            return f
    raise UnsupportedModelError(f"unknown model family {name!r}; supported: {_supported()}")


def _config_dict(source: Any, trust_remote_code: bool) -> tuple[dict[str, Any], str]:
    """(config as a dict, a name for errors) of a path, hub id, config object, config dict or model."""
    if isinstance(source, dict):
        return source, "config"
    if isinstance(source, (str, Path)):
        from virgo.modeling.source import check_model_exists

        path = Path(check_model_exists(source)).expanduser()
        if path.is_dir():
            cfg = path / "config.json"
            if not cfg.is_file():
                raise FileNotFoundError(f"{path}: no config.json (not a model directory)")
            return json.loads(cfg.read_text(encoding="utf-8")), str(path)
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(str(source), trust_remote_code=trust_remote_code)
        return {"model_type": config.model_type, "architectures": config.architectures}, str(source)
    config = getattr(source, "config", source)  # a model (or a PEFT wrapper, which forwards .config)
    if not hasattr(config, "model_type"):
        raise TypeError(f"cannot detect a model family from a {type(source).__name__}")
    name = getattr(config, "_name_or_path", "") or type(source).__name__
    return {"model_type": config.model_type, "architectures": getattr(config, "architectures", None)}, str(name)


def detect(source: Any, *, trust_remote_code: bool = False) -> Family:
    """The family of a model directory or hub id, a transformers config (or its dict), or a loaded model."""
    config, where = _config_dict(source, trust_remote_code)
    for f in families():
        if f.matches(config):
            return f
    arch = ", ".join(config.get("architectures") or ()) or "no architectures"
    raise UnsupportedModelError(f"{where}: model_type {config.get('model_type')!r} ({arch}) is not a supported "
                                f"vision-language model family; supported: {_supported()}")


def rope_index_of(model: Any) -> Callable[..., Any]:
    """The M-RoPE position function of a loaded model of any supported family."""
    return detect(model).rope_index(model)


def resolve_chat_template(name: str, source: Any) -> str:
    """``auto`` -> the chat template name of the family of ``source`` (path, config or model); else ``name``."""
    return detect(source).chat_template if name == AUTO else name
