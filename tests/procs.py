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
