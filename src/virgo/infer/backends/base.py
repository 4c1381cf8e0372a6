"""The backend interface: turn `GenRequest`s into `GenOutput`s, yielding each as soon as it is done."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from typing import Any, Self

from virgo.infer.config import GenerateConfig
from virgo.infer.requests import GenOutput, GenRequest


class GenerationFailures(RuntimeError):
    """Raised after the successful outputs were yielded: requests that failed for good (index -> last error)."""

    def __init__(self, failures: dict[int, BaseException]):
        self.failures = failures
        first = next(iter(failures.values()))
        super().__init__(f"{len(failures)} request(s) failed after retries; first: {first}")


class ContextLengthError(ValueError):
    """A request that does not fit the model's context; ``param`` names the request field at fault (``messages``
    for the prompt, ``max_tokens`` for an explicit limit the prompt leaves no room for)."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.param = param


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

    def stats(self) -> dict[str, Any]:
        """What a run's summary should add about how the backend ran (e.g. requests per endpoint)."""
        return {}

    def close(self) -> None:
        """Release what the backend holds (threads, connections)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
