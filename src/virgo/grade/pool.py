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

Workers start from a forkserver that has already imported the grader (cheap replacements), and
results come back in input order.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection, wait

from virgo.grade.core import Job, grade_job
from virgo.records import Grade

log = logging.getLogger(__name__)

POLL_SECONDS = 0.02
WALL_MARGIN = 0.5  # seconds of wall time an item may take beyond ``timeout`` (page faults, pipe transfer)
DEFAULT_MEMORY_MB = 2048
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
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):  # not on this platform: the time limit still applies
        pass


def _worker_main(conn: Connection, memory_mb: int | None) -> None:
    """Worker loop: warm up, say ready, then grade (index, job) messages until told to stop."""
    _limit_memory(memory_mb)
    from virgo.grade.engine import warm_up

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
        except Exception as e:  # a grader bug must not stop the run; the grade says what happened
            result = f"{type(e).__name__}: {str(e)[:300]}"
        conn.send((index, result))


class _Worker:
    def __init__(self, ctx, memory_mb: int | None):
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child, memory_mb), daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self.index: int | None = None  # the item being graded
        self.job: Job | None = None
        self.cpu0 = 0.0
        self.queued0 = 0.0
        self.t0 = 0.0

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, index: int, job: Job) -> None:
        self.index, self.job = index, job
        self.t0 = time.monotonic()
        stat = _proc_stat(self.pid)
        self.cpu0 = stat[0] if stat is not None else 0.0
        self.queued0 = _run_queue_seconds(self.pid) or 0.0
        self.conn.send((index, job))

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
            self._ctx.set_forkserver_preload(["virgo.grade.core", "virgo.grade.engine", "math_verify"])
        self._workers: list[_Worker] = []
        self.killed = 0  # workers killed for exceeding the limit

    def __enter__(self) -> GradingPool:
        self._workers = [_Worker(self._ctx, self.memory_mb) for _ in range(self.size)]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for w in self._workers:
            if w.index is None and w.process.is_alive():
                w.stop()
            else:
                w.kill()
        self._workers = []

    def _replace(self, w: _Worker) -> None:
        w.kill()
        self._workers[self._workers.index(w)] = _Worker(self._ctx, self.memory_mb)

    def imap(self, jobs: Iterable[Job], on_done: Callable[[Grade], None] | None = None) -> Iterator[Grade]:
        """Grades of ``jobs`` in order (lazily consumed; at most one job per worker in flight)."""
        if not self._workers:
            raise RuntimeError("GradingPool is not started: use it as a context manager")
        source = enumerate(jobs)
        exhausted = False
        results: dict[int, Grade] = {}
        next_out = 0
        failed_starts = 0
        while True:
            # Hand a job to every idle, ready worker.
            for w in self._workers:
                if w.ready and w.index is None and not exhausted:
                    item = next(source, None)
                    if item is None:
                        exhausted = True
                    else:
                        w.send(*item)
            busy = [w for w in self._workers if w.index is not None]
            if exhausted and not busy:
                break
            for conn in wait([w.conn for w in self._workers], timeout=POLL_SECONDS):
                w = next(x for x in self._workers if x.conn is conn)
                try:
                    msg = conn.recv()
                except (EOFError, OSError):  # the worker died (killed from outside, or crashed)
                    if w.index is not None:
                        results[w.index] = _failed_grade(w.job, "error", "the grading worker died")
                    elif not w.ready:
                        failed_starts += 1
                        if failed_starts > 3 * self.size:
                            raise RuntimeError(
                                "grading workers keep dying on start-up. A script that grades must guard its "
                                "entry point with `if __name__ == '__main__':` (workers re-import the main "
                                "module); otherwise the memory limit may be too low.")
                    self._replace(w)
                    continue
                if msg[0] == "ready":
                    w.ready = True
                    continue
                index, result = msg
                if isinstance(result, str):
                    result = _failed_grade(w.job, "error", result)
                results[index] = result
                w.index = w.job = None
            # Kill workers over their limit; the item is graded wrong, the run goes on.
            now = time.monotonic()
            for w in [x for x in self._workers if x.index is not None]:
                what = w.over(self.timeout, self.wall_timeout, now)
                if what is not None:
                    log.info("grading %s/%s took %s: worker killed", w.job.problem.id, w.job.sample, what)
                    results[w.index] = _failed_grade(
                        w.job, "timeout", f"grading exceeded the time limit ({what}); worker killed")
                    self.killed += 1
                    self._replace(w)
            while next_out in results:
                grade = results.pop(next_out)
                if on_done is not None:
                    on_done(grade)
                yield grade
                next_out += 1
