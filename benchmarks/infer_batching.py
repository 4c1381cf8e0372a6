"""Generation throughput on the tiny model: one request at a time versus batches of 8 and 16, in one run.

Every mode decodes the same requests (a quarter with an image, prompts of mixed length) to exactly
``--new-tokens`` tokens each (the end of turn is suppressed, so all modes do the same work), greedy with the
paper's repetition penalty, through the transformers backend (`virgo.infer`). transformers' own
``model.generate`` one at a time is shown for reference. Modes are interleaved over ``--repeats`` rounds and the
best round of each is kept, which damps the noise of a shared machine.

    python benchmarks/infer_batching.py [--requests 16] [--new-tokens 64] [--repeats 3] [--threads 1] [--size xs]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", default="xs", choices=["xs", "s"])
    a = ap.parse_args()

    import torch
    from PIL import Image

    from virgo.infer import GenerateConfig, GenRequest, make_backend
    from virgo.modeling.load import load_model_and_processor
    from virgo.modeling.tiny import make_tiny_model
    from virgo.prompts import END_OF_TURN, build_messages, render_chat

    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory(prefix="virgo-bench-") as tmp:
        model, processor = load_model_and_processor(make_tiny_model(Path(tmp) / "model", size=a.size, seed=0))
    tok = processor.tokenizer
    stop = tok.convert_tokens_to_ids(END_OF_TURN)

    def no_stop(gens, scores):  # every row decodes exactly --new-tokens
        scores[:, stop] = float("-inf")
        return scores

    backend = make_backend("transformers", model=(model, processor), logits_processors=[no_stop])
    img = Image.new("RGB", (48, 40), (200, 30, 30))
    reqs = []
    for i in range(a.requests):
        question = f"What is {i} + {i * 7}? " + "Think about every step carefully. " * (i % 5)
        images = [img] if i % 4 == 0 else []
        reqs.append(GenRequest(build_messages(question, len(images), prompt="think-boxed"), images, id=str(i)))
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
    best: dict[str, float] = {}
    tokens: dict[str, int] = {}
    for _ in range(a.repeats):
        for name, fn in modes.items():
            t0 = time.perf_counter()
            tokens[name] = fn()
            best[name] = max(best.get(name, 0.0), tokens[name] / (time.perf_counter() - t0))
    base = best["one at a time (batch 1)"]
    print(f"tiny model {a.size}, {a.requests} requests x {a.new_tokens} new tokens, {a.threads} thread(s), "
          f"best of {a.repeats}")
    print(f"{'mode':40s} {'tokens':>7s} {'tok/s':>9s} {'vs one at a time':>17s}")
    for name in modes:
        print(f"{name:40s} {tokens[name]:7d} {best[name]:9.0f} {best[name] / base:16.2f}x")


if __name__ == "__main__":
    main()
