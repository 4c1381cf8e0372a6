"""Generation throughput on the tiny model through the transformers backend (`virgo.infer`), in one run each:

* ``--compare batch`` (default): one request at a time versus batches of 8 and 16. Every mode decodes the same
  requests (a quarter with an image, prompts of mixed length) to exactly ``--new-tokens`` tokens each, greedy with
  the paper's repetition penalty; transformers' own ``model.generate`` one at a time is shown for reference. The
  best round of each mode is kept.
* ``--compare continuous``: continuous batching (`virgo.infer.generation.Decoder.run_continuous`, what `virgo
  generate`, `eval`, `distill` and `serve` use with this backend) against static batches, on long-tailed output
  lengths. Long thoughts have long-tailed lengths: in a static batch the rows that finish early leave their slots
  empty until the longest row of the batch is done; continuously, a finished row's slot goes to the next request
  at once. Both modes decode the same requests to exactly their own token count, ``--batch`` rows at a time; the
  static mode is the same backend called on one batch of requests at a time, in the backend's longest-prompt-first
  order. Lengths come from a seeded log-normal (median ``--median`` tokens, sigma ``--sigma``, capped at
  ``--max``). Tokens/s as ranges over the rounds, the ratio of medians.

In both, the end of turn is suppressed (every mode does the same work) and modes are interleaved over
``--repeats`` rounds, which damps the noise of a shared machine.

    python benchmarks/infer_batching.py [--requests 16] [--new-tokens 64] [--repeats 3] [--threads 1] [--size xs]
    python benchmarks/infer_batching.py --compare continuous [--requests 48] [--batch 8] [--median 48]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compare", default="batch", choices=["batch", "continuous"])
    ap.add_argument("--requests", type=int, default=None, help="default: 16 (batch), 48 (continuous)")
    ap.add_argument("--new-tokens", type=int, default=64, help="batch: tokens per request")
    ap.add_argument("--batch", type=int, default=8, help="continuous: rows decoded together")
    ap.add_argument("--median", type=float, default=48, help="continuous: median output tokens")
    ap.add_argument("--sigma", type=float, default=0.9, help="continuous: log-normal sigma of the lengths")
    ap.add_argument("--max", type=int, default=480, help="continuous: longest output")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", default="xs", choices=["xs", "s"])
    a = ap.parse_args()

    import torch
    from PIL import Image

    from virgo.infer import GenRequest, make_backend
    from virgo.modeling.load import load_model_and_processor
    from virgo.modeling.tiny import make_tiny_model
    from virgo.prompts import END_OF_TURN, build_messages

    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory(prefix="virgo-bench-") as tmp:
        model, processor = load_model_and_processor(make_tiny_model(Path(tmp) / "model", size=a.size, seed=0))
    stop = processor.tokenizer.convert_tokens_to_ids(END_OF_TURN)

    def no_stop(gens, scores):  # every row decodes exactly its own token count
        scores[:, stop] = float("-inf")
        return scores

    backend = make_backend("transformers", model=(model, processor), logits_processors=[no_stop])
    img = Image.new("RGB", (48, 40), (200, 30, 30))
    n = a.requests or (48 if a.compare == "continuous" else 16)
    reqs = []
    for i in range(n):
        question = f"What is {i} + {i * 7}? " + "Think about every step carefully. " * (i % 5)
        images = [img] if i % 4 == 0 else []
        reqs.append(GenRequest(build_messages(question, len(images), prompt="think-boxed"), images, id=str(i)))
    if a.compare == "continuous":
        compare_continuous(a, backend, reqs)
    else:
        compare_batch(a, backend, reqs, model, processor)


def interleave(modes: dict, repeats: int) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Run every mode once per round, ``repeats`` rounds; tokens/s of each round and the tokens of the last."""
    rates: dict[str, list[float]] = {m: [] for m in modes}
    tokens: dict[str, int] = {}
    for _ in range(repeats):
        for name, fn in modes.items():
            t0 = time.perf_counter()
            tokens[name] = fn()
            rates[name].append(tokens[name] / (time.perf_counter() - t0))
    return rates, tokens


def compare_batch(a, backend, reqs, model, processor) -> None:
    import torch

    from virgo.infer import GenerateConfig
    from virgo.prompts import render_chat

    cfg = GenerateConfig(max_new_tokens=a.new_tokens)

    def run_backend(batch: int) -> int:
        outs = backend.generate(reqs, cfg.replace(batch_size=batch))
        return sum(len(o.token_ids) for o in outs)

    def run_hf() -> int:
        n = 0
        for r in reqs:
            x = processor(text=[render_chat(r.messages, add_generation_prompt=True)], images=r.images or None,
                          return_tensors="pt")
            with torch.inference_mode():
                g = model.generate(**x, max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, do_sample=False,
                                   repetition_penalty=1.05)
            n += g.shape[1] - x["input_ids"].shape[1]
        return n

    modes = {"one at a time (batch 1)": lambda: run_backend(1), "batch 8": lambda: run_backend(8),
             "batch 16": lambda: run_backend(16), "transformers generate, one at a time": run_hf}
    run_backend(2)  # warm up
    rates, tokens = interleave(modes, a.repeats)
    best = {m: max(r) for m, r in rates.items()}
    base = best["one at a time (batch 1)"]
    print(f"tiny model {a.size}, {len(reqs)} requests x {a.new_tokens} new tokens, {a.threads} thread(s), "
          f"best of {a.repeats}")
    print(f"{'mode':40s} {'tokens':>7s} {'tok/s':>9s} {'vs one at a time':>17s}")
    for name in modes:
        print(f"{name:40s} {tokens[name]:7d} {best[name]:9.0f} {best[name] / base:16.2f}x")


def compare_continuous(a, backend, reqs) -> None:
    from virgo.infer import GenerateConfig

    rng = random.Random(0)
    lengths = [min(a.max, max(2, round(math.exp(rng.gauss(math.log(a.median), a.sigma))))) for _ in reqs]
    cfg = GenerateConfig(max_new_tokens=a.max, batch_size=a.batch)
    for r, n in zip(reqs, lengths):
        r.cfg = cfg.replace(max_new_tokens=n)
    order = sorted(reqs, key=lambda r: -backend.length_estimate(r, cfg))  # the backend's own order

    def continuous() -> int:
        return sum(len(o.token_ids) for o in backend.generate(reqs, cfg))

    def static() -> int:
        return sum(len(o.token_ids) for k in range(0, len(order), a.batch)
                   for o in backend.generate(order[k:k + a.batch], cfg))

    modes = {f"static batches of {a.batch}": static, f"continuous, {a.batch} rows": continuous}
    backend.generate(reqs[:2], cfg.replace(max_new_tokens=4))  # warm up
    rates, tokens = interleave(modes, a.repeats)
    q = statistics.quantiles(lengths, n=10)
    print(f"tiny model {a.size}, {len(reqs)} requests, output tokens median {statistics.median(lengths):.0f}, "
          f"p90 {q[-1]:.0f}, max {max(lengths)} (sum {sum(lengths)}), {a.batch} rows, {a.threads} thread(s), "
          f"{a.repeats} interleaved repeats")
    base = statistics.median(rates[f"static batches of {a.batch}"])
    print(f"{'mode':28s} {'tokens':>7s} {'tok/s':>15s} {'vs static':>10s}")
    for name in modes:
        r = rates[name]
        print(f"{name:28s} {tokens[name]:7d} {min(r):7.0f}-{max(r):<7.0f} {statistics.median(r) / base:9.2f}x")


if __name__ == "__main__":
    main()
