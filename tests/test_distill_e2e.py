"""`virgo distill` end to end with a real tiny-model teacher: served by `virgo serve` on 127.0.0.1 behind a proxy
that injects HTTP 500s, hangs and malformed JSON; and as a local model killed with SIGKILL mid-run and resumed.
The run completes and every (problem, sample) has exactly one rollout."""

import json
import re
import socket
import subprocess
import sys
import time

import httpx
import pytest
from procs import kill_after_records

from virgo.distill.faults import FaultProxy
from virgo.records import LongThoughtExample, Problem
from virgo.records.jsonl import read_records, write_records

N = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def problems_file(tmp_path_factory):
    from PIL import Image

    d = tmp_path_factory.mktemp("problems")
    Image.new("RGB", (32, 32), (200, 30, 30)).save(d / "red.png")
    problems = [Problem(f"t{i}", f"What is {i} + {i}?", str(2 * i)) for i in range(3)]
    problems.append(Problem("v0", "What colour is the square?", "red", images=["red.png"]))
    write_records(d / "problems.jsonl", problems)
    return d / "problems.jsonl"


@pytest.fixture(scope="module")
def served_teacher(tiny_model_dir):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "virgo", "serve", "--model", str(tiny_model_dir), "--port",
                             str(port), "--log-level", "warning"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url + "/v1/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.monotonic() < deadline, "virgo serve did not start"
        time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def _keys(path):
    return [(r["id"], r["sample"]) for r in map(json.loads, path.read_text().splitlines())]


# A hang outlasts the whole run unless the client gives up on it: only the client's timeout ends it early.
HANG_SECONDS = 120.0
CLIENT_TIMEOUT = 10.0  # far above a tiny-model answer (8 tokens) even on busy cores, far below the hang


def test_served_teacher_through_faults_loses_and_duplicates_nothing(served_teacher, problems_file, tmp_path):
    out = tmp_path / "rollouts.jsonl"
    with FaultProxy(served_teacher, shares={"500": 0.25, "hang": 0.1, "malformed": 0.15}, seed=3,
                    hang_seconds=HANG_SECONDS) as proxy:
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "virgo", "distill", "--problems", str(problems_file), "--teacher",
             proxy.url + "/v1", "--n", str(N), "--max-new-tokens", "8", "--temperature", "1.0", "--seed", "1",
             "--concurrency", "4", "--timeout", str(CLIENT_TIMEOUT), "--max-retries", "8", "--no-progress",
             "--out", str(out)], capture_output=True, text=True, timeout=300)
        elapsed = time.monotonic() - t0
        counts = dict(proxy.counts)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert counts.get("500", 0) > 0 and counts.get("malformed", 0) > 0  # faults really happened
    # The hangs were cut by the client's --timeout and retried: waiting them out would take HANG_SECONDS.
    assert counts.get("hang", 0) > 0 and elapsed < HANG_SECONDS, (counts, elapsed)
    keys = _keys(out)
    assert len(keys) == len(set(keys)) == 4 * N
    # The time and token summary at the end adds up to the rollouts written.
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    m = re.search(r"rollouts: (\d+) rollouts, 0 missing of (\d+), ([\d.]+) s, (\d+) prompt \+ (\d+) completion "
                  r"tokens, ([\d.]+) tok/s", proc.stdout)
    assert m, proc.stdout
    assert (int(m[1]), int(m[2])) == (4 * N, 4 * N) and 0 < float(m[3]) < elapsed
    assert (int(m[4]), int(m[5])) == (sum(r["prompt_tokens"] for r in rows), sum(r["completion_tokens"] for r in rows))
    assert int(m[5]) > 0 and float(m[6]) > 0
    # The filtered dataset and its stats sit beside the rollouts (a random teacher solves nothing: may be empty).
    dataset = next(tmp_path.glob("*dataset*.jsonl"))
    read_records(dataset, LongThoughtExample)
    stats = json.loads(next(tmp_path.glob("*stats*.json")).read_text())
    assert stats["rollout"]["records"] == 4 * N and stats["rollout"]["missing"] == 0
    assert stats["grading"]["teacher"]["n"] == 4 * N  # every rollout graded


def test_local_teacher_killed_and_resumed(tiny_model_dir, problems_file, tmp_path):
    out = tmp_path / "rollouts.jsonl"
    cmd = [sys.executable, "-m", "virgo", "distill", "--problems", str(problems_file), "--teacher",
           str(tiny_model_dir), "--n", str(N), "--max-new-tokens", "24", "--temperature", "1.0", "--seed", "2",
           "--batch-size", "1", "--out", str(out)]
    killed = kill_after_records(cmd, out)
    done_before = len(set(_keys(out)))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    keys = _keys(out)
    assert len(keys) == len(set(keys)) == 4 * N
    assert killed and done_before < 4 * N  # the kill really interrupted the run
