"""Grade many responses in worker processes, each item under a hard time limit.

Math-Verify's own timeout uses ``signal.alarm``, which only works in a main thread, and sympy can
spin for minutes (or exhaust memory) on a hostile expression such as ``10^{10^{10^{10}}}``. So every
item is graded in a worker process, and a worker is killed and replaced, its item graded ``wrong`` with
``graded_by="timeout"``, when the item has cost more than ``timeout`` seconds: of CPU time, or of wall
time spent running or blocked (a worker stuck in a system call uses no CPU), which gets a small margin.

Wall time spent waiting in the run queue for a CPU is not charged (``/proc/<pid>/schedstat``), and a
worker that is runnable is left to the CPU limit, so a loaded machine does not turn slow-but-fine items
into timeouts, while a blocked worker still goes after about ``timeout`` seconds. Where ``/proc`` is
missing, plain wall time is charged. The clock starts when an item is handed to a worker that is already
up, so process start-up never counts against an item. Each worker also gets an address-space limit, so
a runaway allocation fails with MemoryError inside the worker instead of swapping the machine.

Workers start from a forkserver that has already imported and warmed up the grader (Math-Verify's parser, pint's
registry), so a worker is ready in milliseconds, and results come back in input order. Each worker holds up to two
items: the one it grades and, when it is small (``PIPELINE_MAX_BYTES`` pickled, so a blocked worker can never
block the pool on a full pipe), the next one, which it starts the moment it finishes; the next item's clock starts
then. An item queued behind a worker that is killed goes back to the front of the line.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import pickle
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection, wait
from typing import Self

from virgo.grade.core import Job, grade_job
from virgo.records import Grade

log = logging.getLogger(__name__)

POLL_SECONDS = 0.02
WALL_MARGIN = 0.5  # seconds of wall time an item may take beyond ``timeout`` (page faults, pipe transfer)
DEFAULT_MEMORY_MB = 2048
PIPELINE_MAX_BYTES = 32 * 1024  # a second item is queued behind a busy worker only when this small (pipe buffer: 64K)
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _proc_stat(pid: int) -> tuple[float, bool] | None:
    """User + system CPU time of a process and whether it is runnable, from /proc (None where unavailable)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()  # after "pid (comm) ": state is field 3, utime/stime 14/15
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK, fields[0] == b"R"


def _run_queue_seconds(pid: int) -> float | None:
    """Time a process's main thread has spent runnable but waiting for a CPU, from /proc (None where unavailable)."""
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as f:
            return int(f.read().split()[1]) / 1e9  # fields: on-CPU ns, run-queue wait ns, time slices
    except (OSError, IndexError, ValueError):
        return None


def _limit_memory(memory_mb: int | None) -> None:
    if not memory_mb:
        return
    try:
        import resource

        limit = memory_mb * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):  # not on this platform: the time limit still applies
        pass


def _worker_main(conn: Connection, memory_mb: int | None) -> None:
    """Worker loop: warm up, say ready, then grade (index, job) messages until told to stop."""
    _limit_memory(memory_mb)
    from virgo.grade.warm import warm_up  # a no-op in a worker forked from the warmed-up forkserver

    warm_up()
    conn.send(("ready", os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        index, job = msg
        try:
            result: Grade | str = grade_job(job)
        except (MemoryError, RecursionError) as e:
            result = f"{type(e).__name__} while grading"
        except Exception as e:  # noqa: BLE001  (a grader bug must not stop the run; the grade says what happened)
            result = f"{type(e).__name__}: {str(e)[:300]}"
        conn.send((index, result))


class _Worker:
    def __init__(self, ctx, memory_mb: int | None):
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child, memory_mb), daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self.inflight: deque[tuple[int, Job]] = deque()  # sent, in order; the first is being graded
        self.cpu0 = 0.0
        self.queued0 = 0.0
        self.t0 = 0.0

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def index(self) -> int | None:
        return self.inflight[0][0] if self.inflight else None

    @property
    def job(self) -> Job | None:
        return self.inflight[0][1] if self.inflight else None

    def _start_clock(self) -> None:
        self.t0 = time.monotonic()
        stat = _proc_stat(self.pid)
        self.cpu0 = stat[0] if stat is not None else 0.0
        self.queued0 = _run_queue_seconds(self.pid) or 0.0

    def send(self, index: int, job: Job, data: bytes) -> None:
        self.inflight.append((index, job))
        if len(self.inflight) == 1:
            self._start_clock()
        self.conn.send_bytes(data)

    def done(self) -> tuple[int, Job]:
        """The current item finished; the next one in flight (if any) starts now."""
        finished = self.inflight.popleft()
        if self.inflight:
            self._start_clock()
        return finished

    def over(self, timeout: float, wall_timeout: float, now: float) -> str | None:
        """How the current item went over its limit ("2.1s CPU", "2.5s wall time"), or None while within it."""
        stat = _proc_stat(self.pid)
        if stat is not None and stat[0] - self.cpu0 > timeout:
            return f"{stat[0] - self.cpu0:.1f}s CPU"
        queued = _run_queue_seconds(self.pid)
        wall = now - self.t0 - (queued - self.queued0 if queued is not None else 0.0)
        # A runnable worker is left to the CPU limit: the kernel adds a wait for a CPU to schedstat only when
        # the wait ends, so a worker queued right now would look blocked.
        if wall > wall_timeout and (stat is None or not stat[1]):
            return f"{wall:.1f}s wall time"
        return None

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, BrokenPipeError):
            pass
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()


def _failed_grade(job: Job, graded_by: str, detail: str) -> Grade:
    return Grade(id=job.problem.id, sample=job.sample, verdict="wrong", extracted=None, graded_by=graded_by,
                 extracted_by=None, gold=job.problem.answer, detail=detail)


class GradingPool:
    """A pool of grading processes that survives killing any of them.

    Use as a context manager; ``imap`` yields one Grade per job, in order. ``timeout`` is the limit per
    item in seconds of CPU time; wall time spent running or blocked may go ``WALL_MARGIN`` beyond it (see the
    module docstring).
    """

    def __init__(self, workers: int | None = None, *, timeout: float = 2.0,
                 memory_mb: int | None = DEFAULT_MEMORY_MB):
        self.size = max(1, workers or default_workers())
        self.timeout = timeout
        self.wall_timeout = timeout + WALL_MARGIN
        self.memory_mb = memory_mb
        methods = mp.get_all_start_methods()
        self._ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
        if self._ctx.get_start_method() == "forkserver":
            # Workers fork from a server that has the grader imported: a replacement starts in milliseconds.
            self._ctx.set_forkserver_preload(["virgo.grade.warm"])
        self._workers: list[_Worker] = []
        self.killed = 0  # workers killed for exceeding the limit

    def __enter__(self) -> Self:
        self._workers = [_Worker(self._ctx, self.memory_mb) for _ in range(self.size)]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for w in self._workers:
            if not w.inflight and w.process.is_alive():
                w.stop()
            else:
                w.kill()
        self._workers = []

    def _replace(self, w: _Worker) -> None:
        w.kill()
        self._workers[self._workers.index(w)] = _Worker(self._ctx, self.memory_mb)

    def imap(self, jobs: Iterable[Job], on_done: Callable[[Grade], None] | None = None) -> Iterator[Grade]:
        """Grades of ``jobs`` in order (lazily consumed; at most two jobs per worker in flight)."""
        if not self._workers:
            raise RuntimeError("GradingPool is not started: use it as a context manager")
        source = enumerate(jobs)
        pending: deque[tuple[int, Job, bytes]] = deque()  # taken from the source (or given back), not yet sent
        exhausted = False
        results: dict[int, Grade] = {}
        next_out = 0
        self._failed_starts = 0
        last_check = 0.0
        while True:
            exhausted = self._dispatch(source, pending, exhausted)
            if exhausted and not pending and not any(w.inflight for w in self._workers):
                break
            for conn in wait([w.conn for w in self._workers], timeout=POLL_SECONDS):
                w = next(x for x in self._workers if x.conn is conn)
                try:
                    msg = conn.recv()
                except (EOFError, OSError):  # the worker died (killed from outside, or crashed)
                    self._worker_died(w, results, pending)
                    continue
                if msg[0] == "ready":
                    w.ready = True
                    continue
                index, result = msg
                _, job = w.done()
                results[index] = _failed_grade(job, "error", result) if isinstance(result, str) else result
            # Kill workers over their limit; the item is graded wrong, the run goes on. (Checked every few
            # milliseconds, not after every result: each check reads /proc.)
            now = time.monotonic()
            if now - last_check >= POLL_SECONDS / 4:
                last_check = now
                for w in [x for x in self._workers if x.inflight]:
                    what = w.over(self.timeout, self.wall_timeout, now)
                    if what is not None:
                        log.info("grading %s/%s took %s: worker killed", w.job.problem.id, w.job.sample, what)
                        results[w.index] = _failed_grade(
                            w.job, "timeout", f"grading exceeded the time limit ({what}); worker killed")
                        self.killed += 1
                        self._give_back(w, pending, skip_first=True)
                        self._replace(w)
            while next_out in results:
                grade = results.pop(next_out)
                if on_done is not None:
                    on_done(grade)
                yield grade
                next_out += 1

    def _dispatch(self, source, pending: deque, exhausted: bool) -> bool:
        """Hand jobs to ready workers: one to each idle one, and a second, small one to each busy one."""
        for depth in (0, 1):
            for w in self._workers:
                if not w.ready or len(w.inflight) != depth:
                    continue
                if not pending and not exhausted:
                    item = next(source, None)
                    if item is None:
                        exhausted = True
                    else:
                        pending.append((*item, pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)))
                if not pending or (depth == 1 and len(pending[0][2]) > PIPELINE_MAX_BYTES):
                    continue
                w.send(*pending.popleft())
        return exhausted

    def _give_back(self, w: _Worker, pending: deque, skip_first: bool) -> None:
        """Jobs queued behind a worker that is going away go back to the front of the line, in order."""
        queued = list(w.inflight)[1 if skip_first else 0:]
        for index, job in reversed(queued):
            pending.appendleft((index, job, pickle.dumps((index, job), protocol=pickle.HIGHEST_PROTOCOL)))
        w.inflight.clear()

    def _worker_died(self, w: _Worker, results: dict[int, Grade], pending: deque) -> None:
        if w.inflight:
            results[w.index] = _failed_grade(w.job, "error", "the grading worker died")
            self._give_back(w, pending, skip_first=True)
        elif not w.ready:
            self._failed_starts += 1
            if self._failed_starts > 3 * self.size:
                raise RuntimeError(
                    "grading workers keep dying on start-up. A script that grades must guard its "
                    "entry point with `if __name__ == '__main__':` (workers re-import the main "
                    "module); otherwise the memory limit may be too low.")
        self._replace(w)
