"""Choosing the next token of sampled rows: per-row ``torch.multinomial`` (before) against batched inverse-CDF
sampling (`virgo.infer.sampling.choose`), side by side in one run.

    python benchmarks/sampling.py [--repeats 3] [--threads 1]

Each configuration is a batch of B rows of scores over V entries (the demo model's 972 and Qwen2-VL's 151,936),
every row sampled at temperature 0.7 with its own seeded generator, top-p 1.0 and 0.95. Two shapes of scores:
"peaked", as a language model's next token (Zipf-like: the r-th most likely entry scores -1.5 ln r, in a random
order, plus a little noise; the 1,024 most likely hold nearly all the probability), and "flat" (Gaussian scores,
standard deviation 3: at 151,936 entries top-p 0.95 reaches past the 1,024 most likely, so the full sort runs
again). Reported: the
milliseconds one decoding step spends choosing the batch's tokens (the best of ``--repeats`` interleaved rounds,
each the mean of several calls) and the ratio. Both are what the transformers backend of ``virgo generate`` and
``virgo distill`` runs between two forward passes; on a GPU the scores would also have to come to the CPU row by
row before (not measured here: no GPU).

The "before" path is kept here verbatim as the baseline; the library no longer has it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import torch

from virgo.infer.sampling import choose


def top_p_sorted(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """``top_p_filter`` as it was: a full sort of the row."""
    if top_p >= 1.0:
        return logits
    sorted_logits, sorted_idx = torch.sort(logits, descending=False)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - top_p)
    remove[..., -1] = False
    return logits.masked_fill(remove.scatter(-1, sorted_idx, remove), float("-inf"))


def choose_multinomial(scores: torch.Tensor, temperatures: Sequence[float], top_ps: Sequence[float],
                       generators: Sequence[torch.Generator | None]) -> list[int]:
    """`choose` as it was: each sampled row on the CPU, top-p by a full sort, then ``torch.multinomial``."""
    greedy = scores.argmax(dim=-1).tolist()
    out = []
    for b, (t, p, g) in enumerate(zip(temperatures, top_ps, generators)):
        if t == 0 or g is None:
            out.append(greedy[b])
            continue
        logits = top_p_sorted(scores[b].cpu() / t, p)
        probs = logits.softmax(dim=-1)
        out.append(int(torch.multinomial(probs, 1, generator=g).item()))
    return out


IMPLS = {"multinomial per row (before)": choose_multinomial, "inverse CDF, batched (now)": choose}


def make_scores(shape: str, rows: int, vocab: int) -> torch.Tensor:
    """Seeded scores of the given shape (see the module docstring)."""
    g = torch.Generator().manual_seed(vocab + rows)
    if shape == "flat":
        return torch.randn(rows, vocab, generator=g) * 3
    ranks = torch.stack([torch.randperm(vocab, generator=g) for _ in range(rows)]) + 1
    return -1.5 * ranks.double().log().float() + 0.1 * torch.randn(rows, vocab, generator=g)


def time_call(fn, scores: torch.Tensor, top_p: float, calls: int) -> float:
    n = scores.shape[0]
    gens = [torch.Generator().manual_seed(i) for i in range(n)]
    fn(scores, [0.7] * n, [top_p] * n, gens)  # warm up
    t = time.perf_counter()
    for _ in range(calls):
        fn(scores, [0.7] * n, [top_p] * n, gens)
    return (time.perf_counter() - t) / calls * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the best of each is kept")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a decoding worker of the demo uses 1)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    configs = [(shape, v, b, p) for shape in ("peaked", "flat") for v in (972, 151_936) for b in (1, 8, 64)
               for p in (1.0, 0.95)]
    best: dict[tuple, dict[str, float]] = {c: {} for c in configs}
    for _ in range(a.repeats):
        for shape, v, b, p in configs:
            scores = make_scores(shape, b, v)
            calls = max(2, 4_000_000 // (v * b))
            for name, fn in IMPLS.items():
                ms = time_call(fn, scores, p, calls)
                best[(shape, v, b, p)][name] = min(best[(shape, v, b, p)].get(name, float("inf")), ms)
    names = list(IMPLS)
    print(f"{a.threads} thread(s), best of {a.repeats} interleaved rounds, ms per decoding step")
    print(f"{'scores':>7} {'vocabulary':>10} {'rows':>5} {'top-p':>6} " + " ".join(f"{n:>30}" for n in names)
          + f" {'speed-up':>9}")
    for (shape, v, b, p), got in best.items():
        print(f"{shape:>7} {v:>10,} {b:>5} {p:>6} " + " ".join(f"{got[n]:>30.3f}" for n in names)
              + f" {got[names[0]] / got[names[1]]:>8.1f}x")


if __name__ == "__main__":
    main()
