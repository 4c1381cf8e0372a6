"""Sequence parallelism (DeepSpeed-Ulysses) for packed long-thought rows: one row's tokens split over a group of ranks.

A long thought does not fit one device's activations: a 32K-token row of a 7B model holds its hidden states,
attention inputs and MLP activations for every layer. With ``sequence_parallel_size=P`` the ranks are taken in
groups of P consecutive ranks; the ranks of a group train on the *same* packed row, and each runs the decoder layers
on its P-th of the row's tokens only. Attention is the one place a token needs the others: there an all-to-all
trades heads for tokens (each rank gets the whole row for H/P of the heads), the packed attention of
`virgo.train.attention` runs on it unchanged (per-sample causal SDPA on CPU, flash-attn varlen on GPU: the sample
boundaries come from the row's full position ids), and a second all-to-all trades back. This is the Ulysses scheme
(Jacobs et al. 2023, arXiv 2309.14509), what ms-swift and DeepSpeed's ALST use for long sequences.

Why not DeepSpeed's own ``UlyssesSPAttentionHF`` (ALST) through accelerate's
``ParallelismConfig(sp_backend="deepspeed")``, which transformers' Trainer drives: its dataloader adapter cuts every
tensor of the batch along dimension 1 before the model runs, so ``input_ids`` keep a share of an image's
placeholders while ``pixel_values`` (patches x features) are cut along their features; and it runs under DeepSpeed
only. Here the split happens after the model has merged the image features into the row (a pre-hook on each
decoder layer), so images, M-RoPE positions and the packed attention are what they are without sequence
parallelism, under DDP, ZeRO-3 or FSDP2 alike. The collectives are torch's differentiable
``torch.distributed.nn.functional.all_to_all_single``.

What each rank does: the embeddings and the vision tower for the whole row (cheap next to the decoder on long
thoughts; their gradients come only from the rank's own tokens, and DDP / ZeRO / FSDP sum them over the group),
then the decoder layers, the final norm, the LM head and the loss on its tokens alone (``labels`` /
``shift_labels`` are cut to them by `ShardedRows`, so the Trainer's token count for the loss mean counts each
token once over the group). Qwen3-VL's deepstack (visual features added to the first layers' hidden states) adds
to each rank the features of its own image tokens. Only training forwards are split: evaluation (the dev loss,
generation) runs every rank on its own batches as without sequence parallelism.

Requirements, checked up front: packed rows under a token budget (``packing_budget``: a micro-batch is one row),
a world size that is a multiple of P, attention heads divisible by P (key / value heads are repeated up to a
multiple of P when they are fewer). A row is padded at its end to a multiple of P with a segment of padding tokens
that nothing attends to and no loss counts.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from virgo.config import ConfigError
from virgo.train.collate import shifted_labels
from virgo.train.data import IGNORE_INDEX

ULYSSES = "virgo_ulysses"  # the language model's attn_implementation under sequence parallelism


@dataclass(frozen=True)
class SequenceGroup:
    """This rank's sequence-parallel group: ``size`` consecutive ranks sharing rows, this rank's place in it."""

    size: int
    rank: int
    group: Any = None  # a torch ProcessGroup (None: the default group, or no collectives at size 1)

    @classmethod
    def create(cls, size: int) -> SequenceGroup:
        """Form the groups (every rank calls this: each group is created on all ranks, as torch requires)."""
        import torch.distributed as dist

        world = dist.get_world_size() if dist.is_initialized() else 1
        data_ranks(world, size)
        if size == 1:
            return cls(1, 0)
        rank = dist.get_rank()
        mine = None
        for first in range(0, world, size):
            group = dist.new_group(list(range(first, first + size)))
            if first <= rank < first + size:
                mine = group
        return cls(size, rank % size, mine)

    def span(self, length: int) -> tuple[int, int]:
        """This rank's tokens of a row of ``length`` (a multiple of ``size``)."""
        share = length // self.size
        return self.rank * share, (self.rank + 1) * share

    def place(self) -> SequenceGroup:
        """Size and rank without the process group: what a loader worker needs (a process group does not pickle)."""
        return SequenceGroup(self.size, self.rank)


def data_ranks(world_size: int, size: int) -> int:
    """Processes that see different data when groups of ``size`` ranks share their rows; a launch the groups do
    not divide is a ConfigError."""
    if size < 1 or world_size % size:
        raise ConfigError(f"sequence_parallel_size={size}: the world size ({world_size} process(es)) must be a "
                          f"multiple of it; launch with -n {size} or a multiple")
    return world_size // size


def padded_length(length: int, size: int) -> int:
    return -(-length // size) * size


def pad_row(batch: dict[str, Any], size: int, pad_token_id: int) -> dict[str, Any]:
    """The packed row padded at its end to a multiple of ``size``: a segment of its own (positions restarting at
    0, so no sample attends to it), with no labels."""
    length = batch["input_ids"].shape[-1]
    extra = padded_length(length, size) - length
    if not extra:
        return batch
    out = dict(batch)

    def grow(t: torch.Tensor, tail: torch.Tensor) -> torch.Tensor:  # tail: a value, or [extra] values
        return torch.cat([t, tail.to(t.dtype).expand(*t.shape[:-1], extra)], dim=-1)

    out["input_ids"] = grow(batch["input_ids"], torch.tensor(pad_token_id))
    out["labels"] = grow(batch["labels"], torch.tensor(IGNORE_INDEX))
    out["mm_token_type_ids"] = grow(batch["mm_token_type_ids"], torch.tensor(0))
    out["position_ids"] = grow(batch["position_ids"], torch.arange(extra))
    return out


@dataclass
class ShardedRows:
    """Collator for the training rows under sequence parallelism: the inner collator's packed row (whole: the
    model merges images and positions over all of it), padded to a multiple of the group size, with the loss
    targets cut to this rank's tokens.

    ``labels`` and ``shift_labels`` become this rank's *already shifted* targets (label of the next token at each
    of its positions), so no shift happens across a cut; with ``logits_to_keep`` (logits at labels only) the mask
    is cut the same way. ``REAL_TOKENS`` carries the row's length before padding on the group's first rank and 0
    on the others, so the tokens/s summed over processes count each row once.
    """

    inner: Callable[[list[dict[str, Any]]], dict[str, Any]]
    group: SequenceGroup
    pad_token_id: int

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.inner(features)
        if batch["input_ids"].shape[0] != 1 or "attention_mask" in batch:
            raise ValueError("sequence parallelism splits one packed row per micro-batch (packing_budget)")
        real = batch["input_ids"].shape[-1]
        batch = pad_row(batch, self.group.size, self.pad_token_id)
        shifted = shifted_labels(batch["labels"])
        lo, hi = self.group.span(shifted.shape[-1])
        local = shifted[:, lo:hi]
        batch["labels"] = local
        if "logits_to_keep" in batch:
            keep = local != IGNORE_INDEX
            batch["logits_to_keep"], batch["shift_labels"] = keep, local[keep]
        else:
            batch["shift_labels"] = local
        batch[REAL_TOKENS] = real if self.group.rank == 0 else 0
        return batch


REAL_TOKENS = "virgo_sp_tokens"  # popped by the trainer before the forward


# ----------------------------------------------------------------------------------------------- the model side

_active: SequenceGroup | None = None  # the group of this process while a model is split (one model per process)
_inner: Callable | None = None  # the packed attention function the gathered row runs on


def _scatter_heads(x: torch.Tensor, group: SequenceGroup) -> torch.Tensor:
    """``[B, H, l, D]`` (all heads, this rank's tokens) -> ``[B, H/P, L, D]`` (its heads, the whole row)."""
    from torch.distributed.nn.functional import all_to_all_single

    b, h, n, d = x.shape
    p = group.size
    send = x.reshape(b, p, h // p, n, d).transpose(0, 1).contiguous()  # dim 0: the rank that gets those heads
    got = all_to_all_single(torch.empty_like(send), send, group=group.group)  # dim 0: the rank the tokens came from
    return got.permute(1, 2, 0, 3, 4).reshape(b, h // p, p * n, d)


def _gather_heads(x: torch.Tensor, group: SequenceGroup) -> torch.Tensor:
    """``[B, L, H/P, D]`` (the whole row, its heads) -> ``[B, l, H, D]`` (this rank's tokens, all heads)."""
    from torch.distributed.nn.functional import all_to_all_single

    b, length, h, d = x.shape
    p = group.size
    send = x.reshape(b, p, length // p, h, d).transpose(0, 1).contiguous()  # dim 0: the rank owning those tokens
    got = all_to_all_single(torch.empty_like(send), send, group=group.group)  # dim 0: the rank those heads came from
    return got.permute(1, 2, 0, 3, 4).reshape(b, length // p, p * h, d)


@contextlib.contextmanager
def _kv_groups(module, groups: int):
    before = getattr(module, "num_key_value_groups", None)
    module.num_key_value_groups = groups
    try:
        yield
    finally:
        module.num_key_value_groups = before


def kv_repeat(kv_heads: int, heads: int, size: int) -> int:
    """How many times key / value heads are repeated so that P ranks can share them (1: they already can)."""
    if heads % size:  # a ConfigError: the user's setting does not fit the model
        raise ConfigError(f"sequence_parallel_size={size}: the language model's {heads} attention heads must divide "
                          "among the ranks of a group")
    repeat = size // math.gcd(kv_heads, size)
    if (heads // kv_heads) % repeat:
        raise ConfigError(f"sequence_parallel_size={size}: {kv_heads} key/value heads for {heads} attention heads "
                          "cannot be shared among the ranks of a group")
    return repeat


def ulysses_attention(module, query, key, value, attention_mask, **kwargs):
    """transformers attention signature. In a training forward under sequence parallelism, ``query`` is
    ``[B, H, l, D]`` for this rank's l tokens; the packed attention runs on the whole row for H/P heads between two
    all-to-alls. Anything else (evaluation, generation) is the packed attention itself."""
    inner = _inner
    group = _active
    if group is None or group.size == 1 or not module.training:
        return inner(module, query, key, value, attention_mask, **kwargs)
    groups = getattr(module, "num_key_value_groups", 1)
    repeat = kv_repeat(key.shape[1], query.shape[1], group.size)
    if repeat > 1:
        from transformers.integrations.sdpa_attention import repeat_kv

        key, value, groups = repeat_kv(key, repeat), repeat_kv(value, repeat), groups // repeat
    query, key, value = (_scatter_heads(t, group) for t in (query, key, value))
    with _kv_groups(module, groups):
        out, _ = inner(module, query, key, value, None, **kwargs)  # the row's full position ids are in kwargs
    return _gather_heads(out.contiguous(), group), None


def _cut(t: torch.Tensor, length: int, group: SequenceGroup) -> torch.Tensor:
    lo, hi = group.span(length)
    return t[:, lo:hi]


def _layer_pre_hook(module, args, kwargs):
    """Before a decoder layer of a training forward: this rank's tokens of the hidden states (the first layer gets
    the whole row) and of the rotary position embeddings (every layer gets them for the whole row)."""
    group = _active
    if group is None or group.size == 1 or not module.training:
        return None
    cos, sin = kwargs["position_embeddings"]
    length = cos.shape[1]
    hidden = args[0] if args else kwargs["hidden_states"]
    if hidden.shape[1] == length:
        hidden = _cut(hidden, length, group)
    kwargs = {**kwargs, "position_embeddings": (_cut(cos, length, group), _cut(sin, length, group))}
    if args:
        return (hidden, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": hidden}


def _local_deepstack(original):
    """Qwen3-VL adds visual features to the first layers' hidden states at the image tokens: on a rank's share of
    the row, the share of those tokens and their features (a packed row is one row, so features are in row
    order)."""

    def deepstack(hidden_states, visual_pos_masks, visual_embeds):
        length = visual_pos_masks.shape[-1]
        group = _active
        if group is None or hidden_states.shape[1] == length:
            return original(hidden_states, visual_pos_masks, visual_embeds)
        lo, hi = group.span(length)
        before = int(visual_pos_masks[:, :lo].sum())
        mine = visual_pos_masks[:, lo:hi]
        return original(hidden_states, mine, visual_embeds[before:before + int(mine.sum())])

    return deepstack


def split_language_model(model, group: SequenceGroup, packed_implementation: str) -> None:
    """Run ``model``'s decoder on this rank's share of each training row (a Qwen VL family model, possibly
    PEFT-wrapped, already on its packed attention ``packed_implementation``)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    from virgo.train.attention import register, segments_mask
    from virgo.train.freeze import inner_model, unwrap

    global _active, _inner
    register()
    AttentionInterface.register(ULYSSES, ulysses_attention)
    AttentionMaskInterface.register(ULYSSES, segments_mask)
    base = unwrap(model)
    text = base.config.text_config
    kv_repeat(text.num_key_value_heads, text.num_attention_heads, group.size)  # refuse before the first step
    _active, _inner = group, AttentionInterface()[packed_implementation]
    base.set_attn_implementation({"text_config": ULYSSES})
    language_model = inner_model(base).language_model
    for layer in language_model.layers:
        layer.register_forward_pre_hook(_layer_pre_hook, with_kwargs=True)
    if hasattr(language_model, "_deepstack_process"):
        language_model._deepstack_process = _local_deepstack(language_model._deepstack_process)
