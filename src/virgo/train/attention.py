"""Attention for packed rows that costs what each sample costs: no sample sees another, no L x L mask is built.

A packed row holds several samples whose text positions restart at 0 (``virgo.train.packing``). Left to itself,
transformers turns those restarts into a materialised ``[1, 1, L, L]`` block-diagonal mask (sdpa, eager) and runs
the kernel over every block of the row, most of them masked away: attention then costs the square of the *row*
length instead of the sum of the squares of the *sample* lengths. This module plugs two paths into transformers
instead, both through its documented extension points, and picks one from the device:

- ``flash_varlen`` (GPU with the ``flash-attn`` package and half precision): the language model runs on
  transformers' own ``flash_attention_2``. Its mask function returns no mask, and its attention detects the packed
  row from the restarting position ids and calls flash-attn's varlen kernel with the sample boundaries
  (``cu_seqlens``) derived from them. Written against the documented API; the CUDA kernel cannot run here (no GPU),
  but the tests run this whole path through transformers with a CPU reference of flash-attn's varlen function in
  its place (tests/test_train_packing.py): the boundaries arrive in every layer and the per-sample losses and
  gradients are the padded batch's, for each family.
  The boundaries are deliberately not passed from the collator as ``cu_seq_lens_q`` / ``max_length_q`` model
  kwargs: the Qwen VL forwards hand the same kwargs to the vision tower, whose flash path passes its own
  ``cu_seq_lens_q``, and the duplicate keyword fails on every batch with an image.
- ``sdpa_segments`` (CPU, or GPU without flash-attn): ``torch.nn.functional.scaled_dot_product_attention`` with
  ``is_causal=True`` on each sample's segment of the row, registered as the attention function
  ``virgo_sdpa_segments`` (``transformers.AttentionInterface``) with a mask function
  (``transformers.masking_utils.AttentionMaskInterface``) that returns no mask for a packed row, so the model never
  builds the L x L mask. Flex attention, the natural tool, has no backward on CPU in torch 2.13, and transformers
  refuses it for the Qwen VL families; a loop over segments measured about 6x the full-mask SDPA at L = 4096 in 8
  segments (docs: feasibility section 7).
- ``block_mask``: transformers' own sdpa with the block-diagonal mask (what packing did before; the baseline of
  ``benchmarks/train_packing.py``, and LLaMA-Factory's ``neat_packing``).

Only the language model's attention changes (its sub-config ``text_config``); the vision tower keeps its own, which
already attends within each image. Anything that is not a packed row (a padded batch, generation with a KV cache)
goes to transformers' sdpa unchanged, so a model left on ``virgo_sdpa_segments`` still evaluates and generates.
The implementation name is not saved with the model (transformers does not serialise it).
"""

from __future__ import annotations

import itertools
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads lazily: the config imports PACKED_ATTENTION from here
    import torch

SEGMENTS = "virgo_sdpa_segments"  # the name registered in transformers' AttentionInterface
PACKED_ATTENTION = ("auto", "flash_varlen", "sdpa_segments", "block_mask")
_TEXT = "text_config"


def segment_bounds(position_ids: torch.Tensor) -> list[list[tuple[int, int]]]:
    """Per row, the ``(start, end)`` of each sample: a sample starts where a position is not the previous one + 1.

    The same rule as ``transformers.masking_utils.find_packed_sequence_indices``, so this path and the block mask
    agree on where samples begin.
    """
    import torch

    pos = position_ids.reshape(-1, position_ids.shape[-1])
    length = pos.shape[-1]
    starts = torch.ones_like(pos, dtype=torch.bool)
    starts[:, 1:] = pos[:, 1:] != pos[:, :-1] + 1
    rows = []
    for row in starts.cpu():
        cuts = row.nonzero().flatten().tolist() + [length]
        rows.append(list(itertools.pairwise(cuts)))
    return rows


# Every decoder layer of one forward sees the same position tensor: find the boundaries once per forward.
_cache: tuple[weakref.ref, int, list[list[tuple[int, int]]]] | None = None


def _cached_bounds(position_ids: torch.Tensor) -> list[list[tuple[int, int]]]:
    global _cache
    if _cache is not None and _cache[0]() is position_ids and _cache[1] == position_ids._version:
        return _cache[2]
    bounds = segment_bounds(position_ids)
    _cache = (weakref.ref(position_ids), position_ids._version, bounds)
    return bounds


def sdpa_segments_attention(module, query, key, value, attention_mask, dropout: float = 0.0,
                            scaling: float | None = None, is_causal: bool | None = None, **kwargs):
    """transformers attention signature: ``query`` ``[B, H, L, D]``, returns ``([B, L, H, D], None)``."""
    import torch
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward, use_gqa_in_sdpa

    position_ids = kwargs.get("position_ids")
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    packed_row = (attention_mask is None and causal and position_ids is not None and query.shape[2] > 1
                  and query.shape[2] == key.shape[2] and position_ids.shape[-1] == query.shape[2])
    bounds = _cached_bounds(position_ids) if packed_row else None
    if bounds is None or all(len(row) == 1 for row in bounds):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    gqa = {}
    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:
        if use_gqa_in_sdpa(None, key, value):
            gqa["enable_gqa"] = True
        else:
            key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    if len(bounds) != query.shape[0]:  # one set of boundaries broadcast over the batch
        bounds = bounds * query.shape[0]
    rows = []
    for b, row in enumerate(bounds):
        # split, not slicing: its backward is one concatenation, where each slice's backward would write its
        # gradient into a zero-filled tensor of the whole row
        sizes = [e - s for s, e in row]
        parts = [torch.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=dropout, scale=scaling,
                                                                  is_causal=True, **gqa).transpose(1, 2)
                 for q, k, v in zip(*(t[b:b + 1].split(sizes, dim=2) for t in (query, key, value)))]
        rows.append(torch.cat(parts, dim=1))  # [1, L, H, D], contiguous: the layout the caller wants
    return (torch.cat(rows, dim=0) if len(rows) > 1 else rows[0]), None


def segments_mask(*args, attention_mask=None, **kwargs):
    """Mask function for ``virgo_sdpa_segments``: none for an unpadded row (the attention splits it by sample),
    transformers' sdpa mask otherwise (padding, a KV cache)."""
    from transformers.masking_utils import sdpa_mask

    if attention_mask is None and kwargs.get("q_length") == kwargs.get("kv_length"):
        return None
    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


def register() -> None:
    """Make ``virgo_sdpa_segments`` a valid ``attn_implementation`` (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(SEGMENTS, sdpa_segments_attention)
    AttentionMaskInterface.register(SEGMENTS, segments_mask)


@dataclass(frozen=True)
class PackedAttention:
    """The chosen path: its name, the language model's ``attn_implementation``, and a line for the log."""

    path: str
    implementation: str
    why: str

    def describe(self) -> str:
        return f"packed attention: {self.path} (language model attn_implementation={self.implementation}; {self.why})"


def choose(requested: str = "auto", *, cuda: bool | None = None, half_precision: bool = False,
           flash_available: bool | None = None) -> PackedAttention:
    """The path for ``requested`` (one of ``PACKED_ATTENTION``) on this machine."""
    import torch
    from transformers.utils import is_flash_attn_2_available

    if requested not in PACKED_ATTENTION:
        raise ValueError(f"packed_attention={requested!r}: must be one of {', '.join(PACKED_ATTENTION)}")
    cuda = torch.cuda.is_available() if cuda is None else cuda
    flash = is_flash_attn_2_available() if flash_available is None else flash_available
    flash_ok = cuda and flash and half_precision
    if requested == "flash_varlen" and not flash_ok:
        missing = [what for what, ok in (("a CUDA device", cuda), ("the flash-attn package", flash),
                                         ("bf16 or a half-precision torch_dtype", half_precision)) if not ok]
        raise ValueError(f"packed_attention=flash_varlen needs {' and '.join(missing)}; "
                         "use auto or sdpa_segments")
    if requested == "block_mask":
        return PackedAttention("block_mask", "sdpa", "forced: the L x L block-diagonal mask of the whole row")
    if requested == "flash_varlen" or (requested == "auto" and flash_ok):
        return PackedAttention("flash_varlen", "flash_attention_2",
                               ("forced" if requested != "auto" else "CUDA + flash-attn")
                               + ": flash-attn varlen, sample boundaries from the position ids")
    why = "forced" if requested != "auto" else ("CUDA without flash-attn or half precision" if cuda else "CPU")
    return PackedAttention("sdpa_segments", SEGMENTS, f"{why}: causal SDPA on each sample's segment, no L x L mask")


def language_model_attention(model) -> str | None:
    """The ``attn_implementation`` the language model currently runs."""
    from virgo.train.freeze import unwrap

    config = unwrap(model).config
    return getattr(getattr(config, _TEXT, None) or config, "_attn_implementation", None)


def use_packed_attention(model, requested: str = "auto", *, half_precision: bool = False) -> PackedAttention:
    """Switch the language model of ``model`` (a Qwen VL family model, possibly PEFT-wrapped) to the chosen path."""
    from virgo.train.freeze import unwrap

    choice = choose(requested, half_precision=half_precision)
    register()
    base = unwrap(model)
    if getattr(base.config, _TEXT, None) is None:
        raise TypeError(f"{type(base).__name__} has no {_TEXT}: packed attention needs a Qwen VL family model")
    base.set_attn_implementation({_TEXT: choice.implementation})
    got = language_model_attention(base)
    if got != choice.implementation:  # transformers declined silently (it only warns): do not claim a path
        raise RuntimeError(f"could not set the language model's attention to {choice.implementation} (it is {got})")
    return choice
