"""Next-token choice for a batch whose rows may each have their own settings.

Repetition penalty, temperature and top-p follow transformers' logits processors (same formulas, same order),
so greedy decoding here equals ``model.generate(do_sample=False, repetition_penalty=...)``. Sampling draws each
row from its own ``torch.Generator``, seeded per (problem, sample): a row's tokens do not depend on which other
rows share its batch, on the batch order, or on a resumed run.
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


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of tokens whose probability adds up to ``top_p`` (at least one); -inf elsewhere."""
    if top_p >= 1.0:
        return logits
    sorted_logits, sorted_idx = torch.sort(logits, descending=False)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - top_p)
    remove[..., -1] = False
    return logits.masked_fill(remove.scatter(-1, sorted_idx, remove), float("-inf"))


def choose(scores: torch.Tensor, temperatures: Sequence[float], top_ps: Sequence[float],
           generators: Sequence[torch.Generator | None]) -> list[int]:
    """One token per row: argmax where the temperature is 0, else a seeded draw after temperature and top-p."""
    greedy = scores.argmax(dim=-1).tolist()
    out = []
    for b, (t, p, g) in enumerate(zip(temperatures, top_ps, generators)):
        if t == 0 or g is None:
            out.append(greedy[b])
            continue
        logits = top_p_filter(scores[b].cpu() / t, p)  # on the CPU: the row's generator is a CPU generator
        probs = logits.softmax(dim=-1)
        out.append(int(torch.multinomial(probs, 1, generator=g).item()))
    return out
