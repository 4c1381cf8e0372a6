"""The demo's stages as jobs on a few worker processes: a training stage at a time on all the cores, generation
stages side by side on one thread each.

Why (measured on this machine's 2 cores with the tiny model, benchmarks/demo_training.py and the demo's own stage
log): a training step of 8 packed samples takes 0.18 s on one thread and 0.09-0.12 s on two, so a training stage
uses both cores; a decode step is too small to split (one thread is faster than two), so the self-distillation is
two jobs over halves of its problems, and evaluations run two at a time. The self-distillation and the
evaluations are about a fifth of the demo's work.

Workers are spawned once and reused (importing torch and transformers costs seconds), one per core; a job starts
when the jobs it depends on have finished and it has its cores, strictly in the order given (the critical path
first: a later job never takes the cores the next one in line is waiting for). Each finished job appends a record
to ``stages.jsonl`` in the run folder (its wall and CPU seconds, its threads and its small result), so a rerun
reuses it with its original timing. With several workers each output line is prefixed with the job's name.
Standard library only (``concurrent.futures``): the scheduling is a dozen jobs with dependencies, which is not worth
a workflow engine.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOG_NAME = "stages.jsonl"


@dataclass
class Job:
    """One stage. ``fn`` runs in a worker (a module-level function; its keyword arguments must pickle).

    ``kwargs`` is a dict, or a function of the finished jobs' results (name -> result) that returns the keyword
    arguments, or a string: the reason the job is skipped (e.g. no self-distilled example survived). ``done`` looks
    at the job's outputs on disk: True = complete (reused even without a record in the log, as in a run folder
    from before the log), False = missing (run again even if the log has a record), None = trust the log.
    """

    name: str
    fn: Callable[..., Any]
    kwargs: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any] | str]
    deps: tuple[str, ...] = ()
    say: str | None = None
    done: Callable[[], bool | None] | None = None
    threads: int = 1  # torch threads (cores) it runs on, at most the run's workers; passed to fn as ``threads``


@dataclass
class Outcome:
    """What became of a job: its result, or why it was skipped; its timing and whether it was reused."""

    result: Any = None
    skipped: str | None = None
    seconds: float | None = None
    cpu_seconds: float | None = None
    reused: bool = False


@dataclass
class _State:
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    running: dict[Future, Job] = field(default_factory=dict)


def read_log(run_dir: Path) -> dict[str, dict[str, Any]]:
    """The finished-stage records of a run folder (the last record per stage wins); torn lines are ignored."""
    path = run_dir / LOG_NAME
    out: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and "stage" in rec:
                out[rec["stage"]] = rec
    return out


def _append_log(run_dir: Path, record: dict[str, Any]) -> None:
    with open(run_dir / LOG_NAME, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


class _Prefixed:
    """A text stream that writes whole lines, each prefixed with the running job's name (one write per line, so
    lines of two workers sharing a pipe or file never interleave mid-line)."""

    def __init__(self, stream, prefix: Callable[[], str]):
        self.stream, self.prefix, self.buf = stream, prefix, ""

    def write(self, text: str) -> int:
        self.buf += text
        *lines, self.buf = self.buf.split("\n")
        for line in lines:
            line = line.rsplit("\r", 1)[-1]  # what a terminal would show of a line redrawn with carriage returns
            self.stream.write(f"{self.prefix()}{line}\n")
        self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.stream.fileno()


_current = {"name": ""}


def _die_with_parent() -> None:
    """Ask Linux to stop this worker when the demo process ends: a pool worker otherwise runs its training job to
    the end after the demo was killed (seen: an orphan training on both cores under the next run)."""
    import ctypes
    import signal

    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _init_worker(progress: bool, prefix: bool) -> None:
    """Worker start-up: die with the demo, quiet libraries, and (with several workers) prefixed output lines."""
    import warnings

    _die_with_parent()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Deprecations inside the libraries are for their maintainers, not for a demo's reader; each would also be
    # printed once per worker.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if not progress:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights", "Writing model shards"
    if prefix:
        sys.stdout = _Prefixed(sys.stdout, lambda: f"[{_current['name']}] ")
        sys.stderr = _Prefixed(sys.stderr, lambda: f"[{_current['name']}] ")


def _run_job(name: str, fn: Callable[..., Any], kwargs: dict[str, Any], threads: int) -> tuple[Any, float, float]:
    import torch

    _current["name"] = name
    torch.set_num_threads(threads)
    t0, c0 = time.monotonic(), os.times()
    try:
        result = fn(**kwargs, threads=threads)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    c1 = os.times()
    return result, time.monotonic() - t0, (c1.user + c1.system) - (c0.user + c0.system)


def _ready(job: Job, st: _State) -> bool:
    return job.name not in st.outcomes and all(d in st.outcomes for d in job.deps)


def _resolve(job: Job, st: _State, log: dict[str, dict[str, Any]]) -> Outcome | dict[str, Any]:
    """An outcome without running (skipped, or reused from the log / from disk), or the kwargs to run it with."""
    skipped_dep = next((d for d in job.deps if st.outcomes[d].skipped is not None), None)
    if skipped_dep is not None:
        return Outcome(skipped=f"{skipped_dep} was skipped: {st.outcomes[skipped_dep].skipped}")
    kwargs = job.kwargs({k: o.result for k, o in st.outcomes.items()}) if callable(job.kwargs) else job.kwargs
    if isinstance(kwargs, str):
        return Outcome(skipped=kwargs)
    rec = log.get(job.name)
    on_disk = job.done() if job.done is not None else None
    if on_disk or (on_disk is None and rec is not None):
        rec = rec or {}  # no record: finished by a run that kept no log; its timing is unknown
        return Outcome(result=rec.get("result"), seconds=rec.get("seconds"), cpu_seconds=rec.get("cpu_seconds"),
                       reused=True)
    return kwargs


def run_jobs(jobs: list[Job], run_dir: Path, *, workers: int = 1, progress: bool = False,
             say: Callable[[str], None] = print) -> dict[str, Outcome]:
    """Run ``jobs`` (in priority order) on up to ``workers`` processes; returns each job's outcome by name.

    A job that fails stops the run: the jobs already running finish (their results are kept for a rerun), none
    starts, and the first error is raised.
    """
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate job names in {names}")
    for j in jobs:
        missing = [d for d in j.deps if d not in names]
        if missing:
            raise ValueError(f"job {j.name!r} depends on unknown job(s) {missing}")
    log = read_log(run_dir)
    st = _State()

    def free() -> int:
        return workers - sum(min(j.threads, workers) for j in st.running.values())

    error: BaseException | None = None
    ctx = mp.get_context("spawn")  # fork after torch has started threads can deadlock
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(progress, workers > 1)) as pool:
        while True:
            progressed = True
            while progressed and error is None:  # start what can start, in priority order, until nothing changes
                progressed = False
                for job in jobs:
                    if not _ready(job, st) or job.name in {j.name for j in st.running.values()}:
                        continue
                    got = _resolve(job, st, log)
                    if isinstance(got, Outcome):
                        st.outcomes[job.name] = got
                        say(f"{job.name}: skipped ({got.skipped})" if got.skipped else
                            f"{job.name}: done in an earlier run, reused")
                    elif min(job.threads, workers) <= free():
                        if job.say:
                            say(job.say)
                        threads = min(job.threads, workers)
                        st.running[pool.submit(_run_job, job.name, job.fn, got, threads)] = job
                    else:
                        break  # the next job in line waits for its cores; nothing behind it jumps the queue
                    progressed = True
                    break  # rescan from the top: the critical path first
            if not st.running:
                break
            finished, _ = wait(st.running, return_when=FIRST_COMPLETED)
            for fut in finished:
                job = st.running.pop(fut)
                try:
                    result, seconds, cpu = fut.result()
                except BaseException as e:  # noqa: BLE001 - re-raised below, after the running jobs end
                    if error is None:
                        error = e
                        if st.running:
                            say(f"{job.name} failed ({type(e).__name__}: {e}); waiting for "
                                f"{', '.join(j.name for j in st.running.values())} to finish (kept for a rerun)")
                    continue
                # Rounded once, here: a rerun reads the logged value back and must report the same time.
                seconds, cpu = round(seconds, 1), round(cpu, 1)
                st.outcomes[job.name] = Outcome(result=result, seconds=seconds, cpu_seconds=cpu)
                _append_log(run_dir, {"stage": job.name, "seconds": seconds, "cpu_seconds": cpu,
                                      "torch_threads": min(job.threads, workers), "result": result})
    if error is not None:
        raise error
    unrun = [n for n in names if n not in st.outcomes]
    if unrun:  # a dependency cycle, or a bug in the order
        raise RuntimeError(f"jobs never became ready: {unrun}")
    return st.outcomes
