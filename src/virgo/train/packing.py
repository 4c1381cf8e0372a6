"""Padding-free packing for Qwen2-VL-family models: several samples in one row, none attending to another.

Two things live here: which samples share a row (``pack_rows``, ``TokenBudgetBatchSampler``) and the positions
each sample gets inside its row (``packed_position_ids``). How attention keeps the samples apart without an
L x L mask is ``virgo.train.attention``.

Qwen2-VL rotates queries and keys with 3-D multimodal positions (M-RoPE: temporal, height, width): text tokens
advance all three together, image tokens take their grid coordinates. Packed naively, the model would compute
those positions over the whole row, as if it were one long conversation. Here each sample's positions come from
the model's own ``get_rope_index`` on that sample alone, so they restart at 0 per sample exactly as in a padded
batch.

The row is handed to the model as transformers' packed format for these models: ``position_ids`` of shape
``[4, 1, L]`` whose first row holds the plain text positions (0..n-1 per sample) and the other three the M-RoPE
positions, with no ``attention_mask``, and ``use_cache=False`` (with a cache transformers does not treat the row
as packed). The restarts in the first row are the sample boundaries: ``virgo.train.attention`` runs causal
attention within each sample from them (flash-attn varlen on GPU, SDPA per segment on CPU); transformers' own
sdpa/eager path would build an L x L block-diagonal mask from them instead.

Rows under a token budget are formed by best-fit decreasing over the sample lengths (longest first, each into the
fullest row it still fits), which leaves rows nearly full on long-tailed data. TRL has the same algorithm
(``trl.pack_dataset(strategy="bfd")``) but it packs the token columns of a ``datasets.Dataset`` and truncates what
does not fit; here only the grouping of sample indices is needed (pixels are decoded when a row is drawn, and a
sample is never cut), so the grouping is computed directly. As in TRL and LLaMA-Factory, rows are formed once;
each epoch visits them in a new seeded order.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence

import torch
from torch.utils.data import Sampler

# model.model.get_rope_index(input_ids, mm_token_type_ids=..., image_grid_thw=...) -> (positions [3, B, L], deltas)
RopeIndex = Callable[..., tuple[torch.Tensor, torch.Tensor]]


def rope_index_of(model) -> RopeIndex:
    """The model's M-RoPE position function (on the inner ``Qwen2VLModel``-like module)."""
    from virgo.train.freeze import inner_model

    fn = getattr(inner_model(model), "get_rope_index", None)
    if fn is None:
        raise TypeError(f"{type(model).__name__} has no get_rope_index: packing needs a Qwen2-VL-family model")
    return fn


def sample_positions(rope_index: RopeIndex, input_ids: torch.Tensor, mm_token_type_ids: torch.Tensor,
                     image_grid_thw: torch.Tensor | None) -> torch.Tensor:
    """``[4, n]`` positions of one sample: text positions, then the 3 M-RoPE rows."""
    n = input_ids.shape[0]
    text = torch.arange(n, dtype=torch.long)
    if image_grid_thw is None:
        mrope = text.expand(3, n)  # text only: all three axes advance together
    else:
        mrope, _ = rope_index(input_ids[None], mm_token_type_ids=mm_token_type_ids[None],
                              image_grid_thw=image_grid_thw)
        mrope = mrope[:, 0].to(torch.long)
    return torch.cat([text[None], mrope], dim=0)


def packed_position_ids(rope_index: RopeIndex, samples: Sequence[tuple[torch.Tensor, torch.Tensor,
                                                                         torch.Tensor | None]]) -> torch.Tensor:
    """``[4, 1, sum(n)]`` position ids for samples given as (input_ids, mm_token_type_ids, image_grid_thw)."""
    return torch.cat([sample_positions(rope_index, *s) for s in samples], dim=1)[:, None, :]


def pack_rows(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Sample indices grouped into rows of at most ``budget`` tokens (best-fit decreasing; deterministic).

    Every index appears in exactly one row. A sample longer than the budget gets a row of its own.
    """
    if budget <= 0:
        raise ValueError(f"token budget {budget}: must be > 0")
    rows: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, row), sorted: the first entry with room >= n is the best fit
    for i in sorted(range(len(lengths)), key=lambda j: (-lengths[j], j)):
        n = lengths[i]
        k = bisect.bisect_left(free, (n, -1))
        if k < len(free):
            room, row = free.pop(k)
            rows[row].append(i)
        else:
            row, room = len(rows), budget
            rows.append([i])
        if room - n > 0:
            bisect.insort(free, (room - n, row))
    return rows


class RowOrder(Sampler[int]):
    """A seeded permutation of the rows, new each epoch (``set_epoch``), the same for the same seed and epoch."""

    def __init__(self, n_rows: int, seed: int):
        self.n_rows, self.seed, self.epoch = n_rows, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_rows

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n_rows, generator=g).tolist())


class TokenBudgetBatchSampler(Sampler[list[int]]):
    """Batches of sample indices, one packed row each, for ``DataLoader(batch_sampler=...)``.

    The order lives in ``.sampler`` (a ``RowOrder``) because that is where accelerate's ``DataLoaderShard`` and
    transformers' Trainer look for ``set_epoch`` when the batch sampler is wrapped for several processes.

    ``copies`` > 1 yields each row that many times in a row: accelerate deals batches out to the processes in turn,
    so ``copies`` consecutive ranks (a sequence-parallel group, `virgo.train.sequence`) get the same row, and the
    groups get disjoint rows, whatever accelerate does at the end of an epoch (it tops the last round up from the
    first batches, which come in whole groups too, since the world size is a multiple of ``copies``).
    """

    def __init__(self, lengths: Sequence[int], budget: int, seed: int, copies: int = 1):
        self.budget, self.copies = budget, copies
        self.rows = pack_rows(lengths, budget)
        self.tokens = [sum(lengths[i] for i in row) for row in self.rows]
        self.sampler = RowOrder(len(self.rows), seed)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.rows) * self.copies

    def __iter__(self) -> Iterator[list[int]]:
        for r in self.sampler:
            for _ in range(self.copies):
                yield list(self.rows[r])

    def describe(self) -> str:
        total = sum(self.tokens)
        fill = total / (self.budget * len(self.rows)) if self.rows else 0.0
        over = sum(t > self.budget for t in self.tokens)
        return (f"token-budget packing: {sum(map(len, self.rows))} samples in {len(self.rows)} rows of at most "
                f"{self.budget} tokens ({fill:.1%} full; {over} sample(s) longer than the budget alone in a row)")
