"""The backend interface: turn `GenRequest`s into `GenOutput`s, yielding each as soon as it is done."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from typing import Any

from virgo.infer.config import GenerateConfig
from virgo.infer.requests import GenOutput, GenRequest

BACKENDS = ("transformers", "openai", "vllm")
# Keywords of the HTTP backend only. In-process backends drop them, so a caller (the generate and distill CLIs,
# eval) passes the same keywords whichever backend it builds.
HTTP_OPTIONS = ("base_url", "api_key", "concurrency", "timeout", "max_retries", "backoff", "max_backoff")


class GenerationFailures(RuntimeError):
    """Raised after the successful outputs were yielded: requests that failed for good (index -> last error)."""

    def __init__(self, failures: dict[int, BaseException]):
        self.failures = failures
        first = next(iter(failures.values()))
        super().__init__(f"{len(failures)} request(s) failed after retries; first: {first}")


class Backend(abc.ABC):
    """A way to generate. ``model_name`` is what generation records name as their model."""

    name: str = "?"
    model_name: str = "?"

    @abc.abstractmethod
    def iter_generate(self, requests: Sequence[GenRequest], cfg: GenerateConfig) -> Iterator[tuple[int, GenOutput]]:
        """Yield (index into ``requests``, output) as each request finishes, in any order."""

    def generate(self, requests: Sequence[GenRequest], cfg: GenerateConfig) -> list[GenOutput]:
        """All outputs, in the order of ``requests``."""
        outs: list[GenOutput | None] = [None] * len(requests)
        for i, o in self.iter_generate(requests, cfg):
            outs[i] = o
        missing = [i for i, o in enumerate(outs) if o is None]
        if missing:
            raise RuntimeError(f"backend {self.name} returned no output for requests {missing[:10]}")
        return outs  # type: ignore[return-value]

    def close(self) -> None:
        """Release what the backend holds (threads, connections)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_backend(name: str, model: Any = None, **kw: Any) -> Backend:
    """A backend by name.

    - ``transformers``: ``model`` is a checkpoint path, or an already-loaded ``(model, processor)`` pair;
      keywords: ``dtype``, ``logits_processors``, ``trust_remote_code``.
    - ``openai``: ``model`` is the served model name; keywords: ``HTTP_OPTIONS`` (``base_url``, ``api_key``,
      ``concurrency``, ``timeout`` in seconds per attempt, ``max_retries``, ``backoff``, ``max_backoff``).
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
