"""The LM head and its loss at Qwen2-VL's vocabulary: three ways to get the summed cross-entropy and its gradients,
side by side in one run of interleaved repeats.

    python benchmarks/head_loss.py [--repeats 2] [--threads 2] [--shapes xs 2b] [--json OUT.json]

The same random hidden states (N rows of width d), an LM head of 151,936 x d and random targets go through:
- logits: ``hidden @ weight.T`` in fp32, then ``cross_entropy`` summed: what transformers' ``ForCausalLMLoss``
  does (``linear_cross_entropy=false``, the default);
- torch_linear_ce: ``virgo.train.headloss.chunked_losses``, torch's ``linear_cross_entropy`` in chunks of 256 MiB
  of fp32 logits, summed in fp32 (``linear_cross_entropy=true``);
- trl_chunked: TRL's ``ChunkedLogProbFunction``, the op behind ``trl.trainer.utils.add_fused_lm_head`` (which TRL's
  SFT and GRPO trainers, and so ``virgo rl``, put on the model): vocabulary tiles of 32,768 folded into online
  log-sum-exp statistics, a Triton kernel on CUDA and a loop of torch ops per tile elsewhere (as here). Asked for
  the log-probabilities only, its cheapest setting (TRL's trainers also ask for the entropy).

Each runs forward and backward (gradients of the hidden states and of the head) in its own subprocess, so its peak
RSS is its own; one untimed warm-up, then the best of ``--steps`` timed runs. The gradients are compared with the
logits path's (largest absolute difference, in units of the largest gradient entry) so a fast wrong op shows.
Shapes: ``xs`` is the tiny model's width 128 with 4,096 rows (positions with a target), ``2b`` Qwen2-VL-2B's
width 1,536 with 1,024 rows. Numbers are only meaningful on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from train_packing import peak_rss_mib, spawn  # this directory is on sys.path: the script's own

VOCAB = 151_936  # Qwen2-VL's
SHAPES = {"xs": {"rows": 4096, "width": 128}, "2b": {"rows": 1024, "width": 1536}}
IMPLS = ("logits", "torch_linear_ce", "trl_chunked")


def _loss(impl: str, hidden, weight, targets):
    import torch

    if impl == "logits":
        return torch.nn.functional.cross_entropy((hidden @ weight.T).float(), targets, reduction="sum")
    if impl == "torch_linear_ce":
        from virgo.train.headloss import chunked_losses

        return chunked_losses(hidden, weight, None, targets).float().sum()
    from trl.kernels import ChunkedLogProbFunction
    from trl.trainer.utils import _CHUNKED_LOGPROB_CHUNK_SIZE  # the tile width add_fused_lm_head passes

    log_probs = ChunkedLogProbFunction.apply(hidden, weight, None, targets, 1.0, _CHUNKED_LOGPROB_CHUNK_SIZE, None,
                                             1.0, ("log_probs",))[0]
    return -log_probs.float().sum()


def run_child(spec: dict) -> dict:
    import torch

    torch.set_num_threads(spec["threads"])
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(spec["rows"], spec["width"], generator=gen).requires_grad_()
    weight = (0.02 * torch.randn(VOCAB, spec["width"], generator=gen)).requires_grad_()
    targets = torch.randint(0, VOCAB, (spec["rows"],), generator=gen)
    times = []
    for i in range(spec["steps"] + 1):
        hidden.grad = weight.grad = None
        start = time.perf_counter()
        loss = _loss(spec["impl"], hidden, weight, targets)
        loss.backward()
        if i:  # the first pays for allocation
            times.append(time.perf_counter() - start)
    out = Path(spec["grads"])
    torch.save({"hidden": hidden.grad, "weight": weight.grad}, out)
    return {"seconds": min(times), "peak_rss_mib": peak_rss_mib()}


def grad_error(reference: Path, other: Path) -> float:
    """Largest |difference| of any gradient entry, over the largest |entry| of the reference's."""
    import torch

    ref, got = torch.load(reference), torch.load(other)
    return max(float((got[k] - ref[k]).abs().max() / ref[k].abs().max()) for k in ("hidden", "weight"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=2, help="interleaved repeats of every implementation (2)")
    ap.add_argument("--steps", type=int, default=2, help="timed forward+backward runs per child, best kept (2)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print("RESULT " + json.dumps(run_child(json.loads(a.child))), flush=True)
        return
    import tempfile

    results: dict[str, dict[str, list[dict]]] = {s: {i: [] for i in IMPLS} for s in a.shapes}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.repeats):
            for shape in a.shapes:
                for impl in IMPLS:
                    print(f"repeat {rep + 1}/{a.repeats}: {shape} {impl}", flush=True)
                    grads = Path(tmp) / f"{shape}-{impl}.pt"
                    r = spawn({"name": f"{shape} {impl}", "impl": impl, "threads": a.threads, "steps": a.steps,
                               "grads": str(grads), **SHAPES[shape]}, __file__)
                    r["grad_error"] = grad_error(Path(tmp) / f"{shape}-logits.pt", grads)
                    results[shape][impl].append(r)
    print(f"\nLM head {VOCAB:,} x d and summed cross-entropy, forward + backward; {a.threads} threads, fp32, "
          f"best of {a.steps} per child, {a.repeats} interleaved repeat(s)")
    print(f"{'shape':<18}{'implementation':<18}{'seconds':>14}{'vs logits':>11}{'peak RSS MiB':>14}{'grad error':>12}")
    summary: dict = {}
    for shape in a.shapes:
        base = statistics.median(r["seconds"] for r in results[shape]["logits"])
        label = f"{shape} ({SHAPES[shape]['rows']}x{SHAPES[shape]['width']})"
        for impl in IMPLS:
            runs = results[shape][impl]
            secs = [r["seconds"] for r in runs]
            rss = max(r["peak_rss_mib"] for r in runs)
            err = max(r["grad_error"] for r in runs)
            ratio = base / statistics.median(secs)  # > 1: faster than the logits path
            print(f"{label:<18}{impl:<18}{min(secs):>6.2f}-{max(secs):<7.2f}{ratio:>10.2f}x{rss:>14,.0f}{err:>12.1e}")
            summary.setdefault(shape, {})[impl] = {"seconds": secs, "speed_vs_logits": ratio, "peak_rss_mib": rss,
                                                   "grad_error": err}
    if a.json:
        Path(a.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
