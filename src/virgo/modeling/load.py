"""Load a model of a supported family and its processor from a local directory or hub id.

The family is detected from the config first, so an unsupported model fails with one clear error (naming the
supported families) before any weights load, and a path that does not exist is not mistaken for a hub id.
Weights load from safetensors only, and ``trust_remote_code`` stays off unless the caller asks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import virgo.modeling.processor  # noqa: F401  (registers the torchvision-free processors)
from virgo.modeling.family import detect

DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16", "auto": "auto"}


def load_processor(path: str | Path, *, trust_remote_code: bool = False, **kwargs: Any):
    from transformers import AutoProcessor

    detect(path, trust_remote_code=trust_remote_code)
    return AutoProcessor.from_pretrained(str(path), trust_remote_code=trust_remote_code, **kwargs)


def load_model(path: str | Path, *, dtype: str = "float32", trust_remote_code: bool = False, **kwargs: Any):
    """The model in the family's own class (``Qwen2VLForConditionalGeneration``, ...)."""
    import torch

    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; one of {sorted(DTYPES)}")
    family = detect(path, trust_remote_code=trust_remote_code)
    torch_dtype = DTYPES[dtype] if DTYPES[dtype] == "auto" else getattr(torch, DTYPES[dtype])
    model = family.model_cls.from_pretrained(
        str(path), dtype=torch_dtype, use_safetensors=True, trust_remote_code=trust_remote_code, **kwargs)
    keep_used_conversions(model)
    return model


def keep_used_conversions(model: Any) -> None:
    """Save in the layout the weights were loaded from, also when they were loaded under ZeRO-3.

    transformers renames checkpoint keys on load (``model.layers.*`` -> ``model.language_model.layers.*``) and
    reverses the renamings that matched when it saves. Its ZeRO-3 loading path (``zero.Init``) keeps *every*
    renaming of the family instead of only those that matched (5.23, ``integrations/deepspeed.py``), so the save
    also reverses Qwen VL's ``PrefixChange`` and writes ``model.model.layers.*``: transformers reads that back, but
    vLLM and the original checkpoint layout do not. Keeping only the renamings that matched, as its other loading
    path does, gives the original layout under ZeRO-3 too.
    """
    conversions = getattr(model, "_weight_conversions", None)
    if conversions:
        model._weight_conversions = [c for c in conversions if not hasattr(c, "was_used") or c.was_used()]


def load_model_and_processor(path: str | Path, **kwargs: Any):
    trust = kwargs.get("trust_remote_code", False)
    return load_model(path, **kwargs), load_processor(path, trust_remote_code=trust)


def set_use_cache(model: Any, value: bool) -> None:
    """Turn the KV cache on (generation) or off (training). The Qwen VL models keep ``use_cache`` in their text
    config, which is what the text model reads."""
    config = getattr(model.config, "text_config", None) or model.config
    config.use_cache = value
