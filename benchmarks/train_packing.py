"""Padded versus padding-free packed SFT batches on the tiny model: non-padding tokens per second and peak memory.

The data has the long-tailed length mix of real long-thought sets: most samples short, a fraction 10x longer,
a quarter with an image. Each mode runs the real ``virgo.train.train`` (Trainer, collator, model) in its own
subprocess, so peak RSS is per mode; both see the same samples in the same order (same seed).

    python benchmarks/train_packing.py [--steps 20] [--batch 8] [--long-frac 0.1] [--threads 1] [--size xs]

Prints one table: tokens/s counts only real (non-padding) tokens; "processed" counts every position the model ran
over, padding included; peak RSS is the process high-water mark, and "RSS growth" the part added by training.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_mode(a: argparse.Namespace) -> dict:
    """One mode, in this process: count tokens in the collator, time the Trainer's train loop."""
    import torch
    from transformers import TrainerCallback

    from virgo.train import collate
    from virgo.train.config import load_config
    from virgo.train.sft import train

    torch.set_num_threads(a.threads)
    counts = {"real": 0, "processed": 0, "batches": 0}
    original = collate.SFTCollator.__call__

    def counting_call(self, features):
        batch = original(self, features)
        counts["real"] += sum(len(f["input_ids"]) for f in features)
        counts["processed"] += batch["input_ids"].numel()
        counts["batches"] += 1
        return batch

    collate.SFTCollator.__call__ = counting_call
    clock: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            clock["rss_begin"] = _peak_rss_mib()
            clock["begin"] = time.perf_counter()

        def on_train_end(self, args, state, control, **kw):
            clock["end"] = time.perf_counter()

    cfg = load_config(None, [
        f"model_name_or_path={a.model}", f"train_files={a.data}", f"output_dir={a.out}",
        f"packing={a.mode == 'packed'}",
        f"max_steps={a.steps}", f"per_device_train_batch_size={a.batch}", "learning_rate=1e-3", "warmup_ratio=0",
        "save_strategy=no", "logging_steps=1000", "image_max_pixels=3136", "cutoff_len=4096",
        "resume_from_checkpoint=none", f"torch_threads={a.threads}"])
    train(cfg, callbacks=[Clock()])
    seconds = clock["end"] - clock["begin"]
    return {"mode": a.mode, "seconds": seconds, "real_tokens": counts["real"], "processed_tokens": counts["processed"],
            "real_tokens_per_s": counts["real"] / seconds, "peak_rss_mib": _peak_rss_mib(),
            "rss_growth_mib": _peak_rss_mib() - clock["rss_begin"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20, help="optimizer steps per mode")
    ap.add_argument("--batch", type=int, default=8, help="samples per step")
    ap.add_argument("--n", type=int, default=160, help="examples in the synthetic dataset")
    ap.add_argument("--long-frac", type=float, default=0.1, help="fraction of samples 10x longer")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", default="xs", help="tiny model size (xs or s)")
    ap.add_argument("--mode", choices=["padded", "packed"], help=argparse.SUPPRESS)  # internal: one mode
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.mode:
        print("RESULT " + json.dumps(run_mode(a)), flush=True)
        return

    from virgo.modeling.tiny import make_tiny_model
    from virgo.train.fixture import make_tiny_longthought

    with tempfile.TemporaryDirectory() as tmp:
        model = make_tiny_model(Path(tmp) / "model", size=a.size)
        data = make_tiny_longthought(Path(tmp) / "data", n=a.n, image_frac=0.25, long_frac=a.long_frac,
                                     long_factor=10, seed=0)
        results = []
        for mode in ("padded", "packed"):
            cmd = [sys.executable, __file__, "--mode", mode, "--model", str(model), "--data", str(data),
                   "--out", str(Path(tmp) / mode), "--steps", str(a.steps), "--batch", str(a.batch),
                   "--threads", str(a.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if proc.returncode != 0 or line is None:
                sys.exit(f"{mode} run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
            results.append(json.loads(line[len("RESULT "):]))

    print(f"\ntiny-{a.size} model, {a.steps} steps x {a.batch} samples, {a.long_frac:.0%} of samples 10x longer, "
          f"{a.threads} thread(s)")
    print(f"{'mode':<8}{'real tok/s':>12}{'real tokens':>13}{'processed':>11}{'padding':>9}{'seconds':>9}"
          f"{'peak RSS MiB':>14}{'RSS growth':>12}")
    for r in results:
        pad = 1 - r["real_tokens"] / r["processed_tokens"]
        print(f"{r['mode']:<8}{r['real_tokens_per_s']:>12.0f}{r['real_tokens']:>13}{r['processed_tokens']:>11}"
              f"{pad:>9.1%}{r['seconds']:>9.2f}{r['peak_rss_mib']:>14.0f}{r['rss_growth_mib']:>12.0f}")
    padded, packed = results
    assert padded["real_tokens"] == packed["real_tokens"], "both modes must see the same samples"
    print(f"packed / padded: {packed['real_tokens_per_s'] / padded['real_tokens_per_s']:.2f}x tokens/s, "
          f"{packed['rss_growth_mib'] / max(padded['rss_growth_mib'], 1e-9):.2f}x RSS growth")


if __name__ == "__main__":
    main()
