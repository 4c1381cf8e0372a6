"""Padding-free packing for Qwen2-VL-family models: several samples in one row, none attending to another.

Qwen2-VL rotates queries and keys with 3-D multimodal positions (M-RoPE: temporal, height, width): text tokens
advance all three together, image tokens take their grid coordinates. Packed naively, the model would compute
those positions over the whole row, as if it were one long conversation. Here each sample's positions come from
the model's own ``get_rope_index`` on that sample alone, so they restart at 0 per sample exactly as in a padded
batch.

The row is handed to the model as transformers' packed format for these models: ``position_ids`` of shape
``[4, 1, L]`` whose first row holds the plain text positions (0..n-1 per sample) and the other three the M-RoPE
positions, with no ``attention_mask``. From the restarts in the first row transformers builds a block-diagonal
causal mask (sdpa/eager) or variable-length sequence boundaries (flash attention), so no sample sees another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

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
