"""Helpers for tests that run real subprocesses."""

import os
import signal
import subprocess
import time
from pathlib import Path


def kill_after_records(cmd: list[str], path: Path, records: int = 2, timeout: float = 240.0) -> bool:
    """Start ``cmd``, SIGKILL its process group once ``path`` holds ``records`` lines; True if it was killed
    (False: it finished first, so the caller did not test an interruption)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= records:
            break
        time.sleep(0.05)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return killed


def run_group(cmd: list[str], *, timeout: float, **kw) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, capture_output=True, text=True)`` in a process group of its own, killed whole when the
    command ends or times out: a launcher's torchrun ranks (and their workers) do not outlive a hung test. A timeout
    fails the test with the output so far."""
    import pytest

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            **kw)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(map(str, cmd[:6]))} ... timed out after {timeout} s (a hang?)\n{out[-3000:]}\n"
                    f"{err[-3000:]}")
    finally:
        _kill_group(proc.pid)  # whatever it left running
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def saved_keys(model_dir: Path) -> set[str]:
    """The weight names a run saved (its safetensors files), as written: the layout vLLM and other loaders read."""
    from safetensors import safe_open

    keys: set[str] = set()
    for f in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(f, framework="pt") as st:
            keys |= set(st.keys())
    assert keys, f"no weights in {model_dir}"
    return keys
