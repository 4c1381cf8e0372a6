"""The request queue and the one thread that decodes: bounded, cancellable, with deadlines.

Requests wait in a bounded queue (`BatchWorker.submit` refuses with `QueueFull` beyond ``max_queue`` waiting
completions: the server answers 429) and one worker thread batches whatever is waiting, up to ``batch_size``,
through the backend; with the transformers backend the batch is continuous (a request that arrives while others
decode takes the first row that finishes, not a turn after the whole batch). A job can be stopped at any time
(`BatchWorker.cancel`): still waiting, it leaves the queue at once; being decoded, the decoder asks
`Job.should_stop` before every step of its row and drops the row at the next step, so an abandoned request holds
its slot for at most one decoding step. A job whose deadline passes is stopped the same way.
"""

from __future__ import annotations

import collections
import concurrent.futures
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from virgo.infer.backends.base import GenerationFailures
from virgo.infer.config import GenerateConfig
from virgo.infer.requests import GenOutput, GenRequest

CANCELLED = "cancelled"  # the finish_reason of a row the decoder dropped on request


class QueueFull(Exception):
    """The queue holds ``max_queue`` waiting completions; ``retry_after`` is a guess in seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"the server's queue is full; retry in {retry_after} s")
        self.retry_after = retry_after


class Stopped(Exception):
    """A job stopped before it finished: ``reason`` is disconnected, timeout, abandoned or shutdown."""

    def __init__(self, reason: str):
        super().__init__(f"stopped: {reason}")
        self.reason = reason


@dataclass(eq=False)
class Job:
    request: GenRequest
    deadline: float | None = None  # time.monotonic() after which the job is stopped
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)
    state: str = "queued"  # queued -> running -> done
    reason: str | None = None  # why it was stopped
    steps: int = 0  # decoding steps this row has been asked about
    steps_at_stop: int | None = None
    started: float | None = None  # time.monotonic() when it left the queue

    def should_stop(self) -> bool:
        """Asked by the decoder before every decoding step of this job's row (`GenRequest.should_stop`)."""
        self.steps += 1
        if self.reason is None and self.deadline is not None and time.monotonic() >= self.deadline:
            self.stop("timeout")
        return self.reason is not None

    def stop(self, reason: str) -> None:
        if self.reason is None:
            self.steps_at_stop = self.steps
            self.reason = reason


class BatchWorker:
    """One thread that takes waiting jobs from a bounded queue, up to ``batch_size`` at a time, and decodes them."""

    def __init__(self, backend: Any, *, batch_size: int = 8, wait_seconds: float = 0.01, max_queue: int = 64):
        self.backend = backend
        self.batch_size = batch_size
        self.wait_seconds = wait_seconds
        self.max_queue = max_queue
        self._pending: collections.deque[Job] = collections.deque()
        self._running: set[Job] = set()
        self._cond = threading.Condition()
        self._stopping = False
        self.recent_batches: collections.deque[int] = collections.deque(maxlen=256)  # sizes, for tests and logs
        self.stats: dict[str, float] = dict.fromkeys(
            ("completed", "failed", "cancelled", "timed_out", "rejected", "batches", "max_queued",
             "max_stop_lag_steps"), 0)
        self._job_seconds = 1.0  # running mean of a request's time in the decoder, for Retry-After
        self._thread = threading.Thread(target=self._loop, name="virgo-serve-worker", daemon=True)
        self._thread.start()

    # -- the event loop's side ----------------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Completions waiting for a decoding slot."""
        return len(self._pending)

    @property
    def active(self) -> int:
        """Completions being decoded."""
        return len(self._running)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    def submit(self, requests: list[GenRequest], deadline: float | None = None) -> list[Job]:
        """Queue all of ``requests`` (the choices of one request) or none: `QueueFull` when they do not fit."""
        jobs = [Job(r, deadline) for r in requests]
        for j in jobs:
            j.request.should_stop = j.should_stop
        with self._cond:
            if self._stopping:
                raise Stopped("shutdown")
            if len(self._pending) + len(jobs) > self.max_queue:
                self.stats["rejected"] += 1
                raise QueueFull(self.retry_after())
            self._pending.extend(jobs)
            self.stats["max_queued"] = max(self.stats["max_queued"], len(self._pending))
            self._cond.notify()
        return jobs

    def retry_after(self) -> int:
        """Seconds until the queue has room, roughly: the waiting requests over the decoder's rows, times a
        request's mean time in the decoder."""
        return max(1, math.ceil(self._job_seconds * (len(self._pending) / self.batch_size)))

    def cancel(self, job: Job, reason: str) -> None:
        """Stop ``job``: out of the queue now, or out of the decoder at its row's next step."""
        job.stop(reason)
        with self._cond:
            if job.state != "queued":
                return
            self._pending.remove(job)
        self._finish(job)

    def halt(self) -> None:
        """Refuse new jobs and stop every job: waiting ones at once, running ones at their next step."""
        with self._cond:
            self._stopping = True
            jobs = [*self._pending, *self._running]
            self._cond.notify_all()
        for job in jobs:
            self.cancel(job, "shutdown")

    def stop(self) -> None:
        """`halt`, then wait for the thread to end."""
        self.halt()
        self._thread.join(timeout=30)

    # -- the worker thread --------------------------------------------------------------------------------------

    def _take(self) -> list[Job] | None:
        with self._cond:
            while not self._pending and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            until = time.monotonic() + self.wait_seconds
            while len(self._pending) < self.batch_size and not self._stopping:
                left = until - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            jobs = self._pop(self.batch_size)
        return self._started(jobs)

    def _take_now(self, n: int) -> list[Job]:
        """Up to ``n`` waiting jobs, without waiting: the room finished rows left in a running decode."""
        with self._cond:
            jobs = [] if self._stopping else self._pop(n)
        return self._started(jobs)

    def _pop(self, n: int) -> list[Job]:  # with self._cond held
        jobs = [self._pending.popleft() for _ in range(min(n, len(self._pending)))]
        now = time.monotonic()
        for j in jobs:
            j.state, j.started = "running", now
        self._running.update(jobs)
        return jobs

    def _started(self, jobs: list[Job]) -> list[Job]:
        now = time.monotonic()
        for j in jobs:
            if j.deadline is not None and now >= j.deadline:  # it timed out while it waited
                j.stop("timeout")
            if j.reason is not None:
                self._finish(j)
        live = [j for j in jobs if j.state == "running"]
        if live:
            self.stats["batches"] += 1  # before they decode: their answers may be read before the run returns
            self.recent_batches.append(len(live))
        return live

    def _loop(self) -> None:
        while (jobs := self._take()) is not None:
            if jobs and hasattr(self.backend, "iter_generate_pull"):
                self._run_continuous(jobs)
            elif jobs:
                self._run(jobs)
        with self._cond:  # stopping: whatever is left gets an answer
            left, self._pending = list(self._pending), collections.deque()
        for job in left:
            job.stop("shutdown")
            self._finish(job)

    def _run_continuous(self, first: list[Job]) -> None:
        """Decode ``first`` and, as rows finish, the jobs that arrive meanwhile (the backend's continuous batching):
        a request no longer waits for the longest thought of the batch before it to end."""
        admitted: list[Job] = []

        def pull(n: int) -> list[GenRequest]:
            got = [first.pop(0) for _ in range(min(n, len(first)))]
            if len(got) < n:
                got += self._take_now(n - len(got))
            admitted.extend(got)
            return [j.request for j in got]

        try:
            for i, out in self.backend.iter_generate_pull(pull, GenerateConfig(batch_size=self.batch_size),
                                                          on_error=lambda i, e: self._finish(admitted[i], error=e)):
                self._finish(admitted[i], out)
        except Exception as e:  # noqa: BLE001 -- one bad request must not fail the others
            self._retry_alone(admitted + first, e)

    def _retry_alone(self, jobs: list[Job], error: BaseException) -> None:
        """After a run failed as a whole: each job it left unanswered runs again by itself, so only a request that
        fails alone gets the error (a run of one gets it at once)."""
        left = [j for j in jobs if j.state != "done"]
        if len(jobs) == 1:
            for j in left:
                self._finish(j, error=error)
            return
        for j in left:
            self._run([j])

    def _run(self, jobs: list[Job]) -> None:
        cfg = GenerateConfig(batch_size=len(jobs))
        try:
            for i, out in self.backend.iter_generate([j.request for j in jobs], cfg):
                self._finish(jobs[i], out)
        except GenerationFailures as e:  # the backend isolated the bad requests; the others are answered
            for i, err in e.failures.items():
                self._finish(jobs[i], error=err)
        except Exception as e:  # noqa: BLE001 -- one bad request must not fail the others
            self._retry_alone(jobs, e)

    def _finish(self, job: Job, out: GenOutput | None = None, error: BaseException | None = None) -> None:
        with self._cond:
            if job.state == "done":
                return
            self._running.discard(job)
            job.state = "done"
            if out is not None and job.started is not None:  # a request's mean time in the decoder: Retry-After
                self._job_seconds = 0.8 * self._job_seconds + 0.2 * (time.monotonic() - job.started)
            stopped = job.reason is not None and (out is None or out.finish_reason == CANCELLED)
            if stopped:
                self.stats["timed_out" if job.reason == "timeout" else "cancelled"] += 1
                if out is not None and job.steps_at_stop is not None:
                    lag = job.steps - job.steps_at_stop
                    self.stats["max_stop_lag_steps"] = max(self.stats["max_stop_lag_steps"], lag)
            else:
                self.stats["failed" if error is not None else "completed"] += 1
        try:
            if stopped:
                job.future.set_exception(Stopped(job.reason or "?"))
            elif error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(out)
        except concurrent.futures.InvalidStateError:
            pass  # the waiting side let go of it (its asyncio wrapper was cancelled)
