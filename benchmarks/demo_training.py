"""The demo's Virgo-T training step, side by side: padded or packed rows, batch 16 or 8, 1 or 2 torch threads.

    python benchmarks/demo_training.py [--repeats 3] [--steps 60] [--stage virgo-t] [--json OUT.json] [--quick]

Each configuration trains the demo's stage (its recipe in src/virgo/demo/recipes, from the shipped base model, on
the demo's seed-0 data) for ``--steps`` steps in its own subprocess, in interleaved order, ``--repeats`` times.
Reported per configuration: wall seconds per optimizer step and CPU seconds (user + system) per step, over the
steps after the fifth (the first ones pay for allocation), as ranges over the repeats; and the ratio of the best
wall time to the first configuration's. CPU time is the steadier number on a shared machine; a 2-thread process
on a busy machine spins at OpenMP barriers, so its CPU time there overstates its work.

Configurations (recipe overrides):
- ``padded16_2t``: the recipe before issue 20 (16 samples per step, right-padded), 2 threads;
- ``padded16_1t``: the same on 1 thread;
- ``packed16_1t``: the same 16 samples per step in one padding-free row, per-sample attention, 1 thread;
- ``packed8_1t``: 8 samples per step, packed, 1 thread;
- ``packed8_2t``: the same on 2 threads (the shipped recipe since issue 20: `virgo demo` trains one stage at a
  time on both cores);
- ``packed16_2t``: 16 samples per step, packed, 2 threads;
- ``packed8_2t_passive``: ``packed8_2t`` with ``OMP_WAIT_POLICY=PASSIVE`` (idle OpenMP threads sleep instead of
  spinning: what a 2-thread process needs on a busy machine);
- ``packed8_2t_glibc_heap``: ``packed8_2t`` with glibc's default heap (``cpu_heap_keep_mib=0``; every other
  configuration keeps freed memory in the heap, the default since `virgo.train.runtime.keep_freed_memory`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = {
    "padded16_2t": (2, ["packing=false", "per_device_train_batch_size=16"]),
    "padded16_1t": (1, ["packing=false", "per_device_train_batch_size=16"]),
    "packed16_1t": (1, ["packing=true", "per_device_train_batch_size=16"]),
    "packed8_1t": (1, ["packing=true", "per_device_train_batch_size=8"]),
    "packed8_2t": (2, ["packing=true", "per_device_train_batch_size=8"]),
    "packed16_2t": (2, ["packing=true", "per_device_train_batch_size=16"]),
    "packed8_2t_passive": (2, ["packing=true", "per_device_train_batch_size=8"]),  # OMP_WAIT_POLICY=PASSIVE
    "packed8_2t_glibc_heap": (2, ["packing=true", "per_device_train_batch_size=8", "cpu_heap_keep_mib=0"]),
}
ENV = {"packed8_2t_passive": {"OMP_WAIT_POLICY": "PASSIVE"}}
FILES = {"virgo-t": ["text_long_thought"], "oracle-visual": ["oracle_visual"]}
SKIP = 5  # steps not timed


def _batch(name: str) -> int:
    """Samples per optimizer step of a configuration (its per-device batch override)."""
    return next(int(o.split("=")[1]) for o in CONFIGS[name][1] if o.startswith("per_device_train_batch_size="))


def run_child(spec: dict) -> dict:
    """Train the stage with the overrides; wall and CPU seconds per step after the first SKIP steps."""
    import torch
    from transformers import TrainerCallback

    from virgo.demo import recipe
    from virgo.demo.base import SHIPPED
    from virgo.train import train
    from virgo.train.config import load_config

    torch.set_num_threads(spec["threads"])
    marks: list[tuple[float, float]] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            t = os.times()
            marks.append((time.perf_counter(), t.user + t.system))

    cli = {"model_name_or_path": str(SHIPPED), "train_files": spec["files"], "output_dir": spec["out"],
           "torch_threads": spec["threads"], "progress": False, "seed": 0, "max_steps": spec["steps"],
           "logging_steps": 1000}
    train(load_config(recipe.stage_recipe(spec["stage"]), spec["overrides"], **cli), callbacks=[Clock()])
    (w0, c0), (w1, c1) = marks[SKIP - 1], marks[-1]
    n = len(marks) - SKIP
    return {"wall_per_step": (w1 - w0) / n, "cpu_per_step": (c1 - c0) / n}


def spawn(spec: dict) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"]), **ENV.get(spec["name"], {})}
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                          check=False,  # a failure is reported below with its output
                          env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{spec['name']} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats of every configuration")
    ap.add_argument("--steps", type=int, default=60, help="optimizer steps per run")
    ap.add_argument("--stage", default="virgo-t", choices=sorted(FILES), help="which demo stage trains")
    ap.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS),
                    help="which configurations (the first is the reference of the ratio column)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--quick", action="store_true", help="1 repeat of 12 steps: checks that the script works")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print("RESULT " + json.dumps(run_child(json.loads(a.child))), flush=True)
        return
    if a.quick:
        a.repeats, a.steps = 1, 12

    from virgo.demo.data import Sizes, build_experiment_data

    results: dict[str, list[dict]] = {name: [] for name in a.configs}
    with tempfile.TemporaryDirectory(prefix="virgo-demo-bench-") as tmp:
        files = build_experiment_data(Path(tmp) / "data", Sizes(), seed=0)
        for rep in range(a.repeats):
            for name in a.configs:
                threads, overrides = CONFIGS[name]
                print(f"repeat {rep + 1}/{a.repeats}: {name}", flush=True)
                spec = {"name": name, "threads": threads, "overrides": overrides, "stage": a.stage,
                        "steps": a.steps, "out": str(Path(tmp) / name),
                        "files": [str(files[f]) for f in FILES[a.stage]]}
                results[name].append(spawn(spec))
    first = min(r["wall_per_step"] for r in results[a.configs[0]])
    print(f"\n{a.stage}, {a.steps} steps, {a.repeats} interleaved repeats (seconds per optimizer step)")
    print(f"{'configuration':<18} {'wall':>17} {'CPU':>17} {'best wall vs first':>20} {'ms wall / sample':>17}")
    for name, runs in results.items():
        wall = [r["wall_per_step"] for r in runs]
        cpu = [r["cpu_per_step"] for r in runs]
        print(f"{name:<18} {min(wall):7.3f}-{max(wall):<7.3f}   {min(cpu):7.3f}-{max(cpu):<7.3f}   "
              f"{first / min(wall):17.2f}x {1000 * min(wall) / _batch(name):17.1f}  "
              f"(median wall {statistics.median(wall):.3f})")
    if a.json:
        Path(a.json).write_text(json.dumps({"stage": a.stage, "steps": a.steps, "results": results}, indent=2))


if __name__ == "__main__":
    main()
