"""Load a Qwen2-VL-family model and its processor from a local directory or hub id.

Weights load from safetensors only, and ``trust_remote_code`` stays off unless the caller asks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import virgo.modeling.processor  # noqa: F401  (registers the torchvision-free processor)

DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16", "auto": "auto"}


def load_processor(path: str | Path, *, trust_remote_code: bool = False, **kwargs: Any):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(str(path), trust_remote_code=trust_remote_code, **kwargs)


def load_model(path: str | Path, *, dtype: str = "float32", trust_remote_code: bool = False, **kwargs: Any):
    import torch
    from transformers import AutoModelForImageTextToText

    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; one of {sorted(DTYPES)}")
    torch_dtype = DTYPES[dtype] if DTYPES[dtype] == "auto" else getattr(torch, DTYPES[dtype])
    return AutoModelForImageTextToText.from_pretrained(
        str(path), dtype=torch_dtype, use_safetensors=True, trust_remote_code=trust_remote_code, **kwargs)


def load_model_and_processor(path: str | Path, **kwargs: Any):
    trust = kwargs.get("trust_remote_code", False)
    return load_model(path, **kwargs), load_processor(path, trust_remote_code=trust)
