"""Several OpenAI-compatible endpoints serving one model, used as one: `virgo generate --base-url A --replicas B`.

A long distillation or evaluation spreads over one ``vllm serve`` per node (or per GPU) without Ray or a load
balancer in front. Each attempt leases the least busy endpoint that is up (ties: the one that has taken fewest
requests); an endpoint whose attempt fails rests, for longer after each failure in a row (exponential, capped), so
a retry goes at once to another one, and a replica that died costs one attempt now and then rather than one per
request. Requests carry their own seeds, so which endpoint answers does not change the text.

Not a library's: the openai client talks to one base URL, and a proxy (LiteLLM, nginx) would be one more service
to run on a cluster for what is a choice among a handful of URLs.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class Endpoint:
    url: str
    client: Any  # an openai.OpenAI for this URL
    busy: int = 0  # attempts in flight
    answered: int = 0
    failed: int = 0
    streak: int = 0  # failures in a row
    down_until: float = 0.0  # time.monotonic() before which it rests


class EndpointPool:
    def __init__(self, endpoints: list[Endpoint], *, backoff: float = 1.0, max_backoff: float = 60.0):
        if not endpoints:
            raise ValueError("no endpoint to send requests to")
        self.endpoints = endpoints
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._lock = threading.Lock()

    def _pick(self) -> Endpoint:
        now = time.monotonic()
        up = [e for e in self.endpoints if e.down_until <= now]
        if not up:  # all resting: the one back soonest
            return min(self.endpoints, key=lambda e: e.down_until)
        return min(up, key=lambda e: (e.busy, e.answered + e.failed))

    @contextlib.contextmanager
    def lease(self) -> Iterator[Endpoint]:
        """The endpoint for one attempt; an exception out of the block counts as its failure and rests it."""
        with self._lock:
            ep = self._pick()
            ep.busy += 1
        try:
            yield ep
        except BaseException:
            with self._lock:
                ep.busy -= 1
                ep.failed += 1
                ep.streak += 1
                rest = min(self.max_backoff, self.backoff * 2 ** (ep.streak - 1))
                ep.down_until = max(ep.down_until, time.monotonic() + rest)
            raise
        with self._lock:
            ep.busy -= 1
            ep.answered += 1
            ep.streak = 0

    def any_up(self) -> bool:
        now = time.monotonic()
        return any(e.down_until <= now for e in self.endpoints)

    def stats(self) -> dict[str, dict[str, int]]:
        return {e.url: {"answered": e.answered, "failed": e.failed} for e in self.endpoints}

    def close(self) -> None:
        for e in self.endpoints:
            e.client.close()
