"""Next-token choice for a batch whose rows may each have their own settings.

Repetition penalty, temperature, top-k, top-p and min-p follow transformers' logits processors (same formulas,
same order), so greedy decoding here equals ``model.generate(do_sample=False, repetition_penalty=...)``; OpenAI's
presence and frequency penalties, which transformers lacks, follow vLLM (after the repetition penalty, over the
output tokens only). Sampling draws each row from its own ``torch.Generator``, seeded per (problem, sample): a row's
tokens do not depend on which other rows share its batch, on the batch order, or on a resumed run.

A sampled row takes one uniform number from its generator and the first token whose cumulative probability
exceeds it (inverse-CDF sampling); temperature, top-p, softmax and the cumulative sums run batched where the
scores are. Why not ``torch.multinomial`` per row, as before: a draw of one token from V entries makes V
exponential variates on the row's CPU generator (the "exponential trick"), and each row's scores had to come to
the CPU first. Measured (``python benchmarks/sampling.py``, 1 thread): at Qwen2-VL's 151,936 entries and 8 rows,
36 ms per decoding step before, 6.6 ms now (161 ms and 20 ms with top-p 0.95, which also no longer sorts every
row in full: `top_p_filter`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def apply_repetition_penalty(scores: torch.Tensor, seen: torch.Tensor, penalty: torch.Tensor) -> torch.Tensor:
    """CTRL-style penalty on every token already in the row (prompt and output): divide positive, multiply negative.

    ``seen`` is a [B, V] bool mask of those tokens, ``penalty`` a [B] tensor (1.0 = off).
    """
    p = penalty[:, None].to(scores.dtype)
    penalized = torch.where(scores < 0, scores * p, scores / p)
    return torch.where(seen, penalized, scores)


def apply_presence_frequency(scores: torch.Tensor, counts: torch.Tensor, presence: torch.Tensor,
                             frequency: torch.Tensor) -> torch.Tensor:
    """OpenAI's presence and frequency penalties, as vLLM applies them (after the repetition penalty): subtract
    ``frequency`` x (times a token was generated) and ``presence`` x (1 if it was generated at all).

    ``counts`` is [B, V], how often each token is in the row's *output* (the prompt does not count, unlike the
    repetition penalty); ``presence`` and ``frequency`` are [B] (0 = off)."""
    return scores - frequency[:, None] * counts - presence[:, None] * (counts > 0).to(scores.dtype)


TOP_P_CANDIDATES = 1024  # the highest-probability tokens searched first for the top-p cut


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of tokens whose probability adds up to ``top_p`` (at least one); -inf elsewhere.

    transformers' rule (``TopPLogitsWarper``): a token goes when the probability of it and every token below it is
    at most ``1 - top_p``, that is, when the tokens above it already hold ``top_p``. The cut is looked for among the
    ``TOP_P_CANDIDATES`` most probable tokens (``topk``), where it almost always lies; a row whose candidates hold
    less than ``top_p`` is cut by a full sort instead. Why: a stable sort of 151,936 scores took 20 ms per row per
    decoding step on the CPU (``python benchmarks/sampling.py``). Each row takes its own path, so a row's result
    does not depend on the rows beside it."""
    if top_p >= 1.0:
        return logits
    if logits.dim() != 2:  # one row, or more leading dimensions: as rows
        return top_p_filter(logits.reshape(-1, logits.shape[-1]), top_p).reshape(logits.shape)
    k = min(TOP_P_CANDIDATES, logits.shape[-1])
    probs = logits.softmax(dim=-1)
    top, idx = probs.topk(k, dim=-1)  # largest first
    above = top.cumsum(dim=-1) - top  # the probability of the tokens above each candidate
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, idx, above < top_p)
    out = logits.masked_fill(~keep, float("-inf"))
    if k < logits.shape[-1]:
        beyond = top.sum(dim=-1) < top_p  # the cut lies past the candidates
        if bool(beyond.any()):
            rows = beyond.nonzero()[:, 0]
            out[rows] = _top_p_by_sort(logits[rows], top_p)
    return out


def _top_p_by_sort(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """`top_p_filter` by a full stable sort of each row (equal scores in index order)."""
    sorted_logits, sorted_idx = torch.sort(logits, descending=False, stable=True)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - top_p)
    remove[..., -1] = False
    return logits.masked_fill(remove.scatter(-1, sorted_idx, remove), float("-inf"))


def top_k_filter(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep the ``top_k`` highest scores of each row (and any equal to the k-th); -inf elsewhere.

    transformers' rule (``TopKLogitsWarper``): a token goes when its score is below the row's k-th highest, so ties
    with the k-th all stay. ``top_k`` 0, or at least the vocabulary, keeps every token."""
    if top_k <= 0 or top_k >= logits.shape[-1]:
        return logits
    kth = logits.topk(top_k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def min_p_filter(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Keep the tokens whose probability is at least ``min_p`` times the row's highest; -inf elsewhere.

    transformers' rule (``MinPLogitsWarper``); the most probable token always stays. ``min_p`` 0 keeps every
    token."""
    if min_p <= 0:
        return logits
    probs = logits.softmax(dim=-1)
    return logits.masked_fill(probs < min_p * probs.amax(dim=-1, keepdim=True), float("-inf"))


def _by_value(logits: torch.Tensor, values: list, off, apply) -> None:
    """``apply(rows, value)`` on each group of rows that share a setting other than ``off``, in place."""
    for v in sorted(set(values) - {off}):
        same = [j for j, w in enumerate(values) if w == v]
        logits[same] = apply(logits[same], v)


def inverse_cdf(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Per row of ``probs`` [n, V], the first token whose cumulative probability exceeds ``u`` [n] (in [0, 1)) times
    the row's total: token i with probability ``probs[i] / total``. A token of probability 0 is never taken (its
    cumulative value equals the one before it, which is not above the target)."""
    p = probs.cpu() if probs.device.type == "mps" else probs  # no float64 on MPS
    # float64: in float32 a token of probability 1e-9 added where the running sum is 0.5 would get a width of 0 or
    # 6e-8 (the spacing of floats there), not 1e-9
    cdf = p.cumsum(dim=-1, dtype=torch.float64)
    total = cdf[:, -1]
    bad = ~(total > 0) | ~torch.isfinite(total)
    if bool(bad.any()):
        row = int(bad.nonzero()[0])
        raise ValueError(f"row {row}: no token has a finite, positive probability (every score -inf or NaN)")
    picks = torch.searchsorted(cdf, (u.to(cdf.device, torch.float64) * total)[:, None], right=True)[:, 0]
    over = picks >= p.shape[-1]  # u * total rounded up to the total itself (u just under 1): rare
    if bool(over.any()):
        rows = over.nonzero()[:, 0]
        last = p.shape[-1] - 1 - (p[rows] > 0).flip(-1).to(torch.int8).argmax(dim=-1)  # the last possible token
        picks[rows] = last
    return picks.to(probs.device)


def choose(scores: torch.Tensor, temperatures: Sequence[float], top_ps: Sequence[float],
           generators: Sequence[torch.Generator | None], top_ks: Sequence[int] | None = None,
           min_ps: Sequence[float] | None = None) -> list[int]:
    """One token per row: argmax where the temperature is 0, else a seeded draw after temperature, top-k, top-p and
    min-p (transformers' order; ``top_ks`` / ``min_ps`` None: off for every row)."""
    sampled = [b for b, (t, g) in enumerate(zip(temperatures, generators)) if t != 0 and g is not None]
    greedy = sorted(set(range(len(temperatures))) - set(sampled))
    out = [0] * len(temperatures)
    if greedy:
        for b, token in zip(greedy, scores[greedy].argmax(dim=-1).tolist()):
            out[b] = token
    if not sampled:
        return out
    device = scores.device
    temps = torch.tensor([temperatures[b] for b in sampled], dtype=scores.dtype, device=device)
    logits = scores[sampled] / temps[:, None]
    # rows that share a setting are filtered together
    if top_ks is not None:
        _by_value(logits, [top_ks[b] for b in sampled], 0, top_k_filter)
    _by_value(logits, [top_ps[b] for b in sampled], 1.0, top_p_filter)
    if min_ps is not None:
        _by_value(logits, [min_ps[b] for b in sampled], 0.0, min_p_filter)
    # one number per row from the row's own generator (CPU generators: draws do not depend on the device)
    u = torch.cat([torch.rand(1, generator=generators[b], dtype=torch.float64) for b in sampled])
    for b, token in zip(sampled, inverse_cdf(logits.softmax(dim=-1), u).tolist()):
        out[b] = token
    return out
