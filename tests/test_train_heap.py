"""`virgo.train.runtime.keep_freed_memory`: on glibc, a large tensor freed and allocated again reuses the heap's
pages instead of faulting in fresh ones. Each case runs in its own interpreter (mallopt is process-wide)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from virgo.train.config import TrainConfig, load_config

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

# Allocate and free a 32 MiB tensor 20 times; print the minor page faults of allocations 2..20.
PROBE = """
import resource, sys
import torch
from virgo.train.runtime import keep_freed_memory
took = keep_freed_memory(int(sys.argv[1]))
x = torch.ones(8 << 20); del x  # the first one faults in either way
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(19):
    x = torch.ones(8 << 20); del x
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mib: int) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, str(mib)], capture_output=True, text=True, check=True)
    took, faults = out.stdout.split()
    return took == "True", int(faults)


def test_a_kept_heap_reuses_the_pages_of_a_freed_tensor():
    took, kept = _faults(256)
    not_taken, default = _faults(0)
    assert took and not not_taken
    pages = 19 * (32 << 20) // 4096  # what 19 fresh 32 MiB mappings fault in
    assert default >= 0.9 * pages, default  # glibc's default: an mmap per tensor, every page faulted again
    assert kept < 0.2 * pages, kept  # kept: the heap's pages reused (glibc grows its top now and then)


def test_the_option_is_in_both_training_configs_and_0_turns_it_off():
    from virgo.rl.config import RLConfig

    assert TrainConfig().cpu_heap_keep_mib == RLConfig().cpu_heap_keep_mib == 256
    cfg = load_config(None, ["output_dir=x", "cpu_heap_keep_mib=0"])
    assert cfg.cpu_heap_keep_mib == 0
    with pytest.raises(Exception, match="cpu_heap_keep_mib"):
        load_config(None, ["output_dir=x", "cpu_heap_keep_mib=-1"])
