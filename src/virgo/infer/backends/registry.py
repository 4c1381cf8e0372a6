"""Backends by name: `make_backend` builds one, importing only the backend asked for.

The factory lives apart from `virgo.infer.backends.base` (the interface every backend imports), so no module
imports a backend that imports it back.
"""

from __future__ import annotations

from typing import Any

from virgo.infer.backends.base import Backend
from virgo.infer.config import BACKENDS

# Keywords of the HTTP backend only. In-process backends drop them, so a caller (the generate and distill CLIs,
# eval) passes the same keywords whichever backend it builds.
HTTP_OPTIONS = ("base_url", "api_key", "concurrency", "timeout", "max_retries", "backoff", "max_backoff",
                "sampling_extras", "replicas")


def make_backend(name: str, model: Any = None, **kw: Any) -> Backend:
    """A backend by name.

    - ``transformers``: ``model`` is a checkpoint path, or an already-loaded ``(model, processor)`` pair;
      keywords: ``dtype``, ``logits_processors``, ``trust_remote_code``.
    - ``openai``: ``model`` is the served model name; keywords: ``HTTP_OPTIONS`` (``base_url``, ``api_key``,
      ``concurrency``, ``timeout`` in seconds per attempt, ``max_retries``, ``backoff``, ``max_backoff``,
      ``sampling_extras``, ``replicas``: more URLs serving the same model).
    - ``vllm`` (optional, where vLLM imports): ``model`` is a checkpoint path.
    """
    if name == "openai":
        from virgo.infer.backends.openai_backend import OpenAIBackend

        kw.pop("dtype", None)
        return OpenAIBackend(model, **kw)
    kw = {k: v for k, v in kw.items() if k not in HTTP_OPTIONS}  # HTTP settings: nothing to do in-process
    if name == "transformers":
        from virgo.infer.backends.transformers_backend import TransformersBackend

        return TransformersBackend(model, **kw)
    if name == "vllm":
        from virgo.infer.backends.vllm_backend import VLLMBackend

        return VLLMBackend(model, **kw)
    raise ValueError(f"unknown backend {name!r}; one of {', '.join(BACKENDS)}")
