"""Batch samples from ``SFTDataset``: right-padded rows, or one padding-free packed row.

Text-only and image samples mix freely: pixel values and image grids of the batch are concatenated in sample
order (the order the model scatters them into the ``<|image_pad|>`` slots), and rows without images simply have
none. ``mm_token_type_ids`` (0 text, 1 image, 2 video) is what Qwen2-VL needs to place its 3-D positions.
When the run shards the model (ZeRO-3, FSDP2), a batch without any image gets a dummy one that cannot change the
loss (``dummy_image``; see `virgo.train.modality`), so every rank runs the vision tower on every step.

With ``logits_at_labels`` the batch also says where logits are needed: only positions whose next token has a
label (prompt, image and padding tokens predict nothing the loss counts). transformers' own arguments carry it:
``logits_to_keep`` (a boolean [B, L] mask; the model runs its LM head on those positions only) and
``shift_labels`` (their targets, which the Trainer also counts for ``num_items_in_batch``). The loss is the same
sum over the same positions. Measured side by side (benchmarks/train_packing.py, ``packed_all_logits``): 1.61x the
tokens/s and 470 MiB less peak RSS at Qwen2-VL's 151,936-entry vocabulary (``--shape xs-vocab152k``); within noise
at the tiny model's 1,064 entries, where the LM head is a small part of a step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from virgo.train.data import IGNORE_INDEX
from virgo.train.modality import DummyImage, ensure_image
from virgo.train.packing import RopeIndex, packed_position_ids


@dataclass
class SFTCollator:
    pad_token_id: int
    image_token_id: int
    video_token_id: int | None = None
    packing: bool = False
    rope_index: RopeIndex | None = None  # required with packing: the model's get_rope_index
    dummy_image: DummyImage | None = None  # set when the vision tower is sharded: no micro-batch goes without one
    logits_at_labels: bool = False  # add logits_to_keep / shift_labels (see the module docstring)

    def __post_init__(self) -> None:
        if self.packing and self.rope_index is None:
            raise ValueError("packing needs the model's rope index function (virgo.train.packing.rope_index_of)")

    def mm_token_types(self, ids: torch.Tensor) -> torch.Tensor:
        types = (ids == self.image_token_id).to(torch.int32)
        if self.video_token_id is not None:
            types[ids == self.video_token_id] = 2
        return types

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        ids = [f["input_ids"] for f in features]
        labels = [f["labels"] for f in features]
        types = [self.mm_token_types(x) for x in ids]
        grids = [f.get("image_grid_thw") for f in features]
        if self.packing:
            batch = {
                "input_ids": torch.cat(ids)[None],
                "labels": torch.cat(labels)[None],
                "mm_token_type_ids": torch.cat(types)[None],
                # No attention_mask: the sample boundaries are where these positions restart (see attention.py).
                "position_ids": packed_position_ids(self.rope_index, list(zip(ids, types, grids))),
                # A KV cache would make transformers skip the packed mask (samples would see each other).
                "use_cache": False,
            }
        else:
            width = max(len(x) for x in ids)
            batch = {
                "input_ids": torch.full((len(ids), width), self.pad_token_id, dtype=torch.long),
                "labels": torch.full((len(ids), width), IGNORE_INDEX, dtype=torch.long),
                "attention_mask": torch.zeros((len(ids), width), dtype=torch.long),
                "mm_token_type_ids": torch.zeros((len(ids), width), dtype=torch.int32),
            }
            for row, (x, y, t) in enumerate(zip(ids, labels, types)):
                batch["input_ids"][row, : len(x)] = x
                batch["labels"][row, : len(y)] = y
                batch["attention_mask"][row, : len(x)] = 1
                batch["mm_token_type_ids"][row, : len(t)] = t
        with_images = [f for f in features if f.get("pixel_values") is not None]
        if with_images:
            batch["pixel_values"] = torch.cat([f["pixel_values"] for f in with_images])
            batch["image_grid_thw"] = torch.cat([f["image_grid_thw"] for f in with_images])
        if self.dummy_image is not None:
            batch = ensure_image(batch, self.dummy_image, pad_token_id=self.pad_token_id, rope_index=self.rope_index)
        if self.logits_at_labels:
            batch.update(label_positions(batch["labels"]))
        return batch


def shifted_labels(labels: torch.Tensor) -> torch.Tensor:
    """Each position's target: the next token's label (none after the last)."""
    return torch.nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)


def label_positions(labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """``logits_to_keep`` (where the next token has a label) and ``shift_labels`` (those labels, flattened in the
    order transformers' ``slice_logits_to_keep`` gathers a boolean mask's positions)."""
    shifted = shifted_labels(labels)
    keep = shifted != IGNORE_INDEX
    return {"logits_to_keep": keep, "shift_labels": shifted[keep]}
