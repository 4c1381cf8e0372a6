"""Memory of one long packed row, trained whole in one process against split over 2 ranks (sequence parallelism).

    python benchmarks/train_sequence.py [--shape 2b-layer] [--length 4096] [--steps 3] [--repeats 2] [--json OUT]

Each run trains the real ``virgo.train.sft.train`` on text-only samples of ``--length`` tokens, one per packed row
(``packing_budget`` = the length), fp32, gradient checkpointing off, under torchrun: ``P = 1`` (one process, 2
threads) and ``P = 2`` (two processes of 1 thread, ``sequence_parallel_size=2``: each runs the decoder on half of
each row), interleaved, ``--repeats`` times. Per rank it reports the peak RSS (the kernel's ``VmHWM``), the RSS
when training began (model, data and optimizer-free state loaded) and their difference, which is what the steps
themselves added: activations kept for the backward pass, gradients, optimizer state. The gradients and the
optimizer state are the same in both runs; the activations are what sequence parallelism divides. Tokens/s are
the row tokens per second of the steps after the first; on 2 cores over gloo they say what the all-to-alls cost
here, not what NCCL would.

The default shape is one decoder layer of Qwen2-VL-2B (``benchmarks/train_packing.py`` ``--shape 2b-layer``):
at the tiny xs width the activations of a row are small next to the process's own memory.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_packing import SHAPES, peak_rss_mib, write_fixed

REPO = Path(__file__).resolve().parents[1]


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def child(out: str, overrides: list[str]) -> None:
    """One rank: train, then write its figures to ``out/rank{RANK}.json``."""
    from transformers import TrainerCallback

    from virgo.train.config import load_config
    from virgo.train.launch import close_process_group
    from virgo.train.sft import train

    got: dict = {"step_ends": []}

    class Meter(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            got["rss_at_start"] = rss_mib()
            got["begin"] = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            got["step_ends"].append(time.perf_counter())

        def on_train_end(self, args, state, control, **kw):
            got["peak"] = peak_rss_mib()

    train(load_config(None, overrides), callbacks=[Meter()])
    Path(out, f"rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(got))
    close_process_group()


def run_one(size: int, model: Path, data: Path, tmp: Path, a) -> dict:
    out = tmp / f"sp{size}-{time.monotonic_ns()}"
    out.mkdir()
    threads = 2 // size
    overrides = [f"model_name_or_path={model}", f"train_files={data}", f"output_dir={out}", f"max_steps={a.steps}",
                 "learning_rate=1e-4", "warmup_ratio=0", "save_strategy=no", "logging_steps=100000",
                 f"cutoff_len={a.length}", "overlong=truncate", f"torch_threads={threads}", "progress=false",
                 "seed=0", "torch_dtype=float32", "bf16=false", "gradient_checkpointing=false", "packing=true",
                 f"packing_budget={a.length}", "report_to=none", f"sequence_parallel_size={size}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={size}", __file__,
           "--child", str(out), *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        sys.exit(f"P={size} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(size)]
    ends = ranks[0]["step_ends"]
    return {"peak": [r["peak"] for r in ranks], "start": [r["rss_at_start"] for r in ranks],
            "added": [r["peak"] - r["rss_at_start"] for r in ranks],
            "tokens_per_s": a.length * (len(ends) - 1) / (ends[-1] - ends[0])}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="2b-layer")
    ap.add_argument("--length", type=int, default=4096, help="tokens per row (one sample each)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()

    from virgo.modeling.load import load_processor
    from virgo.modeling.tiny import TinySpec, make_tiny_model

    results: dict[int, list[dict]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        model = make_tiny_model(tmp / "model", size=TinySpec(**SHAPES[a.shape]))
        data = write_fixed(tmp / "data", load_processor(model).tokenizer, a.steps + 1, a.length, seed=0)
        for rep in range(a.repeats):
            for size in (1, 2):
                print(f"repeat {rep + 1}/{a.repeats}: P={size}", flush=True)
                results[size].append(run_one(size, model, data, tmp, a))
    print(f"\nshape {a.shape}; rows of {a.length} tokens (one text-only sample each); {a.steps} steps; fp32; "
          f"{a.repeats} interleaved repeat(s)")
    print(f"{'run':<26}{'peak RSS MiB':>16}{'RSS at start':>16}{'added by steps':>18}{'tokens/s':>12}")
    def span(runs: list[dict], key: str) -> str:
        values = [v for r in runs for v in r[key]]
        return f"{min(values):,.0f}-{max(values):,.0f}"

    for size, runs in results.items():
        rate = [r["tokens_per_s"] for r in runs]
        label = "1 process, 2 threads" if size == 1 else "2 ranks x 1 thread (SP 2)"
        print(f"{label:<26}{span(runs, 'peak'):>16}{span(runs, 'start'):>16}{span(runs, 'added'):>18}"
              f"{min(rate):>6,.0f}-{max(rate):,.0f}")
    added = {s: statistics.median(v for r in runs for v in r["added"]) for s, runs in results.items()}
    print(f"memory the steps add per rank, SP 2 over 1 process: {added[2] / added[1]:.2f}x (medians)")
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "runs": results, "added_ratio": added[2] / added[1]},
                                           indent=2))


if __name__ == "__main__":
    main()
