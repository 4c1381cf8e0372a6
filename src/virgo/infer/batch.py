"""A running decode's batch: its rows' per-row state beside the KV cache, and the cache surgery continuous
batching needs (`virgo.infer.generation.Decoder.run_continuous`): rows that join (both sides left-padded to one
width, then concatenated), rows that leave, and the cache columns no live row attends to any more.

Every live token's cache column is kept per row (``_Row.cols``: the thought control masks a taken-back token by
it), so whatever moves the columns moves those indices with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Batch:
    """The live rows of a decode and their per-row state (cache, attention mask, positions, seen tokens)."""

    rows: list[Any]  # `virgo.infer.generation`'s rows; only their ``cols`` are read here (no import back)
    cache: Any
    attn: torch.Tensor
    live: torch.Tensor  # tokens each row attends to: the next position before the delta
    deltas: torch.Tensor
    seen: torch.Tensor
    penalty: torch.Tensor
    # presence / frequency penalties: each row's output token counts [B, V] and its two penalties [B]; None when no
    # row of the batch uses them (no vocabulary-sized counts to keep)
    counts: torch.Tensor | None = None
    presence: torch.Tensor | None = None
    frequency: torch.Tensor | None = None
    mrope: bool = False  # some row has an image: decode positions go in Qwen-VL's 3-D form
    # plain per-layer key / value tensors (no sliding window): rows can join and columns can be cut
    mergeable: bool = field(init=False)

    def __post_init__(self) -> None:
        from transformers.cache_utils import DynamicLayer

        self.mergeable = all(type(layer) is DynamicLayer for layer in getattr(self.cache, "layers", [None]))

    def _pad_left(self, k: int) -> None:
        """``k`` empty (masked) cache columns in front of every row: every live token's column moves by ``k``."""
        if k == 0:
            return
        self.attn = torch.cat([torch.zeros((self.attn.shape[0], k), dtype=self.attn.dtype), self.attn], dim=1)
        for layer in self.cache.layers:
            layer.keys = torch.nn.functional.pad(layer.keys, (0, 0, k, 0))
            layer.values = torch.nn.functional.pad(layer.values, (0, 0, k, 0))
        for r in self.rows:
            r.cols = [c + k for c in r.cols]

    def merge(self, other: Batch) -> None:
        """Take ``other``'s rows (just prefilled) into this batch: both left-padded to one cache width, then
        every piece of per-row state concatenated. Rows that use no presence / frequency penalty get zero counts."""
        width = max(self.attn.shape[1], other.attn.shape[1])
        self._pad_left(width - self.attn.shape[1])
        other._pad_left(width - other.attn.shape[1])
        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            mine.keys = torch.cat([mine.keys, theirs.keys])
            mine.values = torch.cat([mine.values, theirs.values])
        if self.counts is not None or other.counts is not None:
            for b in (self, other):
                if b.counts is None:
                    b.counts = torch.zeros_like(b.seen, dtype=torch.float32)
                    b.presence = b.frequency = torch.zeros(len(b.rows), dtype=torch.float32, device=b.seen.device)
            self.counts = torch.cat([self.counts, other.counts])
            self.presence = torch.cat([self.presence, other.presence])
            self.frequency = torch.cat([self.frequency, other.frequency])
        self.rows += other.rows
        self.attn = torch.cat([self.attn, other.attn])
        self.live, self.deltas = torch.cat([self.live, other.live]), torch.cat([self.deltas, other.deltas])
        self.seen, self.penalty = torch.cat([self.seen, other.seen]), torch.cat([self.penalty, other.penalty])
        self.mrope = self.mrope or other.mrope

    def trim(self) -> None:
        """Drop the cache columns no row attends to any more, at the left: the padding of rows that have left.
        Under continuous batching the batch may never empty, and without this its width would grow by a column at
        every step of the whole run; with it, the width stays about the oldest live row's length."""
        first = int(self.attn.argmax(dim=1).min())  # each row's first attended column (the first 1), the least
        if first == 0:
            return
        self.attn = self.attn[:, first:]
        for layer in self.cache.layers:
            layer.keys, layer.values = layer.keys[:, :, first:], layer.values[:, :, first:]
        for r in self.rows:
            r.cols = [c - first for c in r.cols]

    def keep(self, keep: list[int], device: Any) -> None:
        """Drop the finished rows from every piece of state."""
        idx = torch.tensor(keep, dtype=torch.long)
        self.cache.batch_select_indices(idx.to(device))
        self.rows = [self.rows[i] for i in keep]
        self.attn, self.live, self.deltas = self.attn[idx], self.live[idx], self.deltas[idx]
        on = idx.to(self.seen.device)
        self.seen, self.penalty = self.seen[on], self.penalty[on]
        if self.counts is not None:
            self.counts, self.presence, self.frequency = self.counts[on], self.presence[on], self.frequency[on]
