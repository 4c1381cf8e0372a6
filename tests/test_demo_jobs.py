"""The demo's job runner (`virgo.demo.jobs`) on real worker processes: order, cores, skips, reuse, failure, and
workers that die with the demo.

The jobs here are small module-level functions (a worker imports them by name); each records when it ran.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from virgo.demo.jobs import LOG_NAME, Job, read_log, run_jobs


def mark(path: str, tag: str, *, seconds: float = 0.0, partner: str | None = None, threads: int = 1) -> str:
    """Append ``tag start`` / ``tag end`` lines (with times) to ``path``; returns the tag. With ``partner``, wait
    (at most a minute) until that job has started too: it fails unless the two run side by side, however long a
    worker takes to start on a busy machine."""
    with open(path, "a") as f:
        f.write(f"{tag} start {time.time()} {threads}\n")
    deadline = time.time() + 60
    while partner and f"{partner} start" not in Path(path).read_text():
        if time.time() > deadline:
            raise RuntimeError(f"{tag} ran without {partner} beside it")
        time.sleep(0.05)
    time.sleep(seconds)
    with open(path, "a") as f:
        f.write(f"{tag} end {time.time()}\n")
    return tag


def fail(threads: int = 1) -> None:
    raise ValueError("this stage fails")


def _events(path: Path) -> dict[tuple[str, str], float]:
    out = {}
    for line in path.read_text().splitlines():
        tag, what, t, *_ = line.split()
        out[(tag, what)] = float(t)
    return out


def test_dependencies_order_and_cores(tmp_path):
    trace = str(tmp_path / "trace")
    jobs = [
        Job("a", mark, {"path": trace, "tag": "a", "seconds": 0.5, "partner": "c"}),
        Job("big", mark, {"path": trace, "tag": "big", "seconds": 0.5}, ("a",), threads=2),
        Job("b", mark, {"path": trace, "tag": "b", "seconds": 0.5}, ("a",)),
        Job("c", mark, {"path": trace, "tag": "c", "seconds": 0.5, "partner": "a"}),
    ]
    out = run_jobs(jobs, tmp_path, workers=2, say=lambda m: None)
    ev = _events(tmp_path / "trace")
    assert ev[("a", "end")] <= ev[("big", "start")]  # a dependency finishes first
    # "big" needs both cores: it runs alone, and "b" (after it in line) waits rather than jumping the queue
    for other in ("a", "c", "b"):
        assert ev[(other, "end")] <= ev[("big", "start")] or ev[(other, "start")] >= ev[("big", "end")]
    assert ev[("b", "start")] >= ev[("big", "end")]
    assert ev[("a", "start")] < ev[("c", "end")] and ev[("c", "start")] < ev[("a", "end")]  # side by side (partner)
    threads = {line.split()[0]: int(line.split()[3]) for line in (tmp_path / "trace").read_text().splitlines()
               if " start " in line}
    assert threads == {"a": 1, "c": 1, "big": 2, "b": 1}  # the job's cores are passed to it
    assert {k: o.result for k, o in out.items()} == {"a": "a", "big": "big", "b": "b", "c": "c"}
    assert all(o.seconds >= 0.5 for o in out.values())


def test_skips_propagate_and_rerun_reuses_with_first_timing(tmp_path):
    trace = str(tmp_path / "trace")

    def plan():
        return [
            Job("a", mark, {"path": trace, "tag": "a", "seconds": 0.2}),
            Job("b", mark, lambda done: "nothing to train on" if done["a"] == "a" else {}, ("a",)),
            Job("c", mark, {"path": trace, "tag": "c"}, ("b",)),
        ]

    said = []
    first = run_jobs(plan(), tmp_path, workers=1, say=said.append)
    assert first["b"].skipped == "nothing to train on"
    assert first["c"].skipped == "b was skipped: nothing to train on"
    assert "c: skipped (b was skipped: nothing to train on)" in said
    assert read_log(tmp_path)["a"]["seconds"] == first["a"].seconds  # rounded once, logged as reported

    again = run_jobs(plan(), tmp_path, workers=1, say=said.append)
    assert again["a"].reused and again["a"].seconds == first["a"].seconds and again["a"].result == "a"
    assert (tmp_path / "trace").read_text().count("a start") == 1  # not run twice
    assert "a: done in an earlier run, reused" in said


def test_a_failure_stops_the_run_and_keeps_finished_stages(tmp_path):
    trace = str(tmp_path / "trace")
    jobs = [
        Job("slow", mark, {"path": trace, "tag": "slow", "seconds": 1.0}),
        Job("bad", fail, {}),
        Job("after", mark, {"path": trace, "tag": "after"}, ("bad",)),
    ]
    with pytest.raises(ValueError, match="this stage fails"):
        run_jobs(jobs, tmp_path, workers=2, say=lambda m: None)
    assert "slow" in read_log(tmp_path)  # the stage running beside the failure finished and is kept
    assert "after start" not in (tmp_path / "trace").read_text()


def test_bad_plans_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown job"):
        run_jobs([Job("a", mark, {}, ("nope",))], tmp_path)
    with pytest.raises(ValueError, match="duplicate"):
        run_jobs([Job("a", mark, {}), Job("a", mark, {})], tmp_path)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_die_with_the_demo(tmp_path):
    """Killing the demo (kill -9, no clean-up) stops its workers: none goes on training under the next run."""
    trace = tmp_path / "trace"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_demo_jobs import mark
        from virgo.demo.jobs import Job, run_jobs
        if __name__ == "__main__":
            run_jobs([Job("long", mark, {{"path": {str(trace)!r}, "tag": "long", "seconds": 120}})],
                     __import__("pathlib").Path({str(tmp_path)!r}), workers=1)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 120
    while not (trace.exists() and "long start" in trace.read_text()):
        assert proc.poll() is None and time.time() < deadline, "the job never started"
        time.sleep(0.2)
    worker = _children(proc.pid)
    assert worker, "no worker process found"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    while any(_alive(p) for p in worker) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in worker), "a worker outlived the demo"
    assert not (tmp_path / LOG_NAME).exists() or "long" not in read_log(tmp_path)


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_log_lines_are_json(tmp_path):
    run_jobs([Job("a", mark, {"path": str(tmp_path / "trace"), "tag": "a"})], tmp_path, say=lambda m: None)
    rec = json.loads((tmp_path / LOG_NAME).read_text().splitlines()[0])
    assert rec["stage"] == "a" and rec["result"] == "a" and rec["torch_threads"] == 1
