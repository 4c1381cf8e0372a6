"""Every rank runs the vision tower on every micro-batch, so sharded training survives text-only micro-batches.

Virgo trains on D_T ∪ D_SD: text-only long thoughts mixed with visual ones. Under ZeRO-3 and FSDP2 the vision
tower's weights are sharded, and running it is a collective: every rank gathers the tower's shards, block by
block, in the same order. A rank whose micro-batch has no image skips ``self.visual`` while the others call it, so
the collectives no longer pair up: gloo aborts with "collective mismatch", NCCL hangs. DDP does not gather
weights, and a single process has nothing to pair, so neither needs this.

The fix: a micro-batch without an image gets a dummy image, the smallest one the model accepts (one merged
token: a ``merge x merge`` grid of patches of zeros, i.e. the mean colour after normalisation), placed so that
it cannot change the loss:

- padded batches: its ``<|image_pad|>`` token(s) go right after the last real token of row 0, where that row held
  padding. Causal attention means no real token attends to them; their labels are ignored (-100) and row 0's real
  positions (M-RoPE included) are unchanged, since the dummy comes after them. The other rows are untouched.
- packed rows: the dummy is one more segment at the end of the row, with its own positions restarting at 0,
  so the per-sample attention (`virgo.train.attention`) keeps it apart like any other sample; labels -100.

So the loss is a function of the real tokens only, and its gradient with respect to the dummy's features is
exactly zero: the vision tower and merger receive zero gradients from it, and every other parameter's gradient is
what it was (``tests/test_train_modality.py`` checks both on each family). The model's own forward consumes the
dummy exactly as a real image (``pixel_values`` / ``image_grid_thw`` / ``mm_token_type_ids``; Qwen3-VL's
DeepStack features land on the same positions), which is what keeps the order of collectives identical across
ranks: a separate call of the tower outside the forward would gather its weights at another point of the
sequence than on the ranks with images.

It is applied in the collator (`virgo.train.collate.SFTCollator`), only when the run shards the model
(`needs_vision_every_step`); it costs one token per text-only micro-batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from virgo.train.data import IGNORE_INDEX

CHANNELS = 3  # the Qwen VL image processors' pixel_values rows are C x T x P x P (RGB)


@dataclass(frozen=True)
class DummyImage:
    """A zero image of one merged token, in the processor's ``pixel_values`` layout."""

    pixel_values: torch.Tensor  # [merge * merge, C * T * P * P]
    grid_thw: torch.Tensor  # [1, 3]: one temporal patch, merge x merge spatial patches
    tokens: int  # image tokens it costs in input_ids
    image_token_id: int

    @classmethod
    def for_processor(cls, image_processor: Any, image_token_id: int) -> DummyImage:
        merge = int(image_processor.merge_size)
        patch = int(image_processor.patch_size)
        temporal = int(image_processor.temporal_patch_size)
        pixels = torch.zeros(merge * merge, CHANNELS * temporal * patch * patch)
        return cls(pixels, torch.tensor([[1, merge, merge]]), 1, image_token_id)

    def token_ids(self) -> torch.Tensor:
        return torch.full((self.tokens,), self.image_token_id, dtype=torch.long)


def has_image(batch: dict[str, Any]) -> bool:
    return batch.get("pixel_values") is not None


def add_to_padded(batch: dict[str, Any], dummy: DummyImage, pad_token_id: int) -> dict[str, Any]:
    """Put the dummy's tokens after row 0's last real token (widening the batch only if row 0 is full)."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    start = int(mask[0].sum())
    end = start + dummy.tokens
    if end > ids.shape[1]:
        grow = end - ids.shape[1]
        pads = {"input_ids": pad_token_id, "labels": IGNORE_INDEX, "attention_mask": 0, "mm_token_type_ids": 0}
        for key, value in pads.items():
            t = batch[key]
            batch[key] = torch.cat([t, t.new_full((t.shape[0], grow), value)], dim=1)
    batch["input_ids"][0, start:end] = dummy.token_ids()
    batch["labels"][0, start:end] = IGNORE_INDEX
    batch["attention_mask"][0, start:end] = 1
    batch["mm_token_type_ids"][0, start:end] = 1
    batch["pixel_values"] = dummy.pixel_values.clone()
    batch["image_grid_thw"] = dummy.grid_thw.clone()
    return batch


def add_to_packed(batch: dict[str, Any], dummy: DummyImage, rope_index) -> dict[str, Any]:
    """Append the dummy as one more segment of the packed row (positions restart, so it is its own sample)."""
    from virgo.train.packing import sample_positions

    ids = dummy.token_ids()
    types = torch.ones_like(ids, dtype=torch.int32)
    positions = sample_positions(rope_index, ids, types, dummy.grid_thw)[:, None, :]
    batch["input_ids"] = torch.cat([batch["input_ids"], ids[None]], dim=1)
    batch["labels"] = torch.cat([batch["labels"], torch.full_like(ids, IGNORE_INDEX)[None]], dim=1)
    batch["mm_token_type_ids"] = torch.cat([batch["mm_token_type_ids"], types[None]], dim=1)
    batch["position_ids"] = torch.cat([batch["position_ids"], positions.to(batch["position_ids"].dtype)], dim=2)
    batch["pixel_values"] = dummy.pixel_values.clone()
    batch["image_grid_thw"] = dummy.grid_thw.clone()
    return batch


def ensure_image(batch: dict[str, Any], dummy: DummyImage, *, pad_token_id: int, rope_index=None) -> dict[str, Any]:
    """The batch itself when it holds an image; otherwise the batch with the dummy image added."""
    if has_image(batch):
        return batch
    if "position_ids" in batch:  # a packed row
        if rope_index is None:
            raise ValueError("a packed row needs the model's rope index to place the dummy image")
        return add_to_packed(batch, dummy, rope_index)
    return add_to_padded(batch, dummy, pad_token_id)


def needs_vision_every_step(launch: str, world_size: int, deepspeed_config: Any = None) -> bool:
    """Whether the vision tower's weights are sharded over ranks, so every rank must run it on every step.

    ``launch`` zero3 or fsdp2 (Virgo's launches), or, on GPUs, an accelerate config that turns on FSDP or
    DeepSpeed ZeRO-3 (accelerate passes those to each rank in the environment).
    """
    if world_size <= 1:
        return False
    if launch in ("zero3", "fsdp2"):
        return True
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true"):
        return True
    if os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3":
        return True
    return _zero_stage(deepspeed_config) == 3


def _zero_stage(deepspeed_config: Any) -> int | None:
    if not deepspeed_config:
        return None
    if isinstance(deepspeed_config, str):
        import json

        try:
            with open(deepspeed_config, encoding="utf-8") as f:
                deepspeed_config = json.load(f)
        except (OSError, ValueError):
            return None
    if isinstance(deepspeed_config, dict):
        stage = deepspeed_config.get("zero_optimization", {}).get("stage")
        return int(stage) if isinstance(stage, int) else None
    return None
