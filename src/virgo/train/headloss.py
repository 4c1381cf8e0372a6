"""The LM head and its loss as one chunked op: a training step never holds the [tokens x vocabulary] logits.

At Qwen2-VL's 151,936-entry vocabulary the logits of one 32K-token packed row are 20 GB in fp32 (transformers'
loss upcasts them), and their gradient as much again: by far the largest tensors of a long-thought step, and
what runs out of memory first as ``cutoff_len`` grows. With ``linear_cross_entropy=true`` the head and the loss
are torch's own ``torch.nn.functional.linear_cross_entropy`` on its chunked path (``LinearCrossEntropyOptions``):
the rows of the hidden states go through the head a chunk at a time, each chunk's logits give its losses and are
dropped; backward recomputes them a chunk at a time. ``reduction="none"``: the per-token losses come back in the
model's dtype and are summed in fp32; the op's summed loss is accumulated in the model's dtype and was 4% off in
bf16 on a 300-token test.

Why not the same idea from the libraries: Liger-Kernel's fused linear cross-entropy (LLaMA-Factory's) is Triton,
GPU only. TRL's ``add_fused_lm_head`` (trl 1.16; its own SFT and GRPO trainers put it on the model, so ``virgo rl``
runs it) folds vocabulary tiles into online log-sum-exp statistics: a Triton kernel on CUDA, elsewhere a loop of
torch ops per tile, which measured 3.7x slower than this op and 6x its peak RSS on the CPUs the tests and the demo
run on (4,096 rows of width 128 at 151,936 entries: 13.3-18.0 s against 4.2-4.4 s, 4,837 against 784 MiB; the
logits path 5.5-5.9 s, 7,445 MiB; ``benchmarks/head_loss.py``). It also replaces the model's ``forward`` with one
that runs the backbone and the head itself; here the model's own forward runs and only the head changes.

How it plugs in, through transformers' own seams only: ``SFTTrainer.compute_loss`` hands the batch's targets
(``shift_labels``, from the collator's ``logits_at_labels``) to the head for one forward; the head's forward,
where ZeRO-3 and FSDP have gathered its weight, returns the per-token losses in place of logits; the model's
``loss_function`` (its documented setter) takes that tensor, one loss per target, and sums it over
``num_items_in_batch`` as transformers' ``ForCausalLMLoss`` sums and divides. Any other call (generation, a
forward without targets) gets the plain head and the plain loss. The model's output then has no logits
(``prediction_loss_only`` stays true).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from virgo.train.data import IGNORE_INDEX

# Rows per chunk: as many as give 256 MiB of fp32 logits (441 rows at Qwen2-VL's 151,936 entries). torch's own
# "auto" sizes a chunk by the hidden width (a chunk's logits as large as the input rows); at the tiny model's width
# 128 that is one row per chunk, and the op ran at 1/7 of the logits path's speed.
CHUNK_BYTES = 256 * 2**20


def chunked_losses(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                   targets: torch.Tensor) -> torch.Tensor:
    """Per-row cross-entropy of ``hidden @ weight.T (+ bias)`` against ``targets`` (``IGNORE_INDEX`` rows give 0),
    in the model's dtype, computed ``CHUNK_BYTES`` of fp32 logits at a time and recomputed so in backward."""
    import torch
    from torch.nn import LinearCrossEntropyOptions

    rows = max(1, CHUNK_BYTES // (4 * weight.shape[0]))
    return torch.nn.functional.linear_cross_entropy(
        hidden, weight, targets, linear_bias=bias, reduction="none", ignore_index=IGNORE_INDEX,
        options=LinearCrossEntropyOptions(batch_chunk_size=rows))


class HeadLoss:
    """Attached to one model (possibly PEFT-wrapped): its LM head computes per-token losses while ``targets`` is
    armed, and its loss function sums them."""

    def __init__(self, model) -> None:
        import torch

        from virgo.train.freeze import unwrap

        base = unwrap(model)
        head = base.get_output_embeddings()
        if type(head) is not torch.nn.Linear:  # a LoRA-wrapped or quantised head has no plain weight to chunk
            raise TypeError(f"linear_cross_entropy needs a plain nn.Linear LM head, not {type(head).__name__}")
        self.head = head
        self._plain_forward = head.forward
        self._plain_loss = base.loss_function  # transformers' ForCausalLMLoss for these families
        self._targets: torch.Tensor | None = None
        # How many per-token losses the head returned in place of logits and the loss function has not summed yet.
        # A count, not the tensor: ZeRO-3's module hooks hand the model a new tensor object wrapping the output.
        self._pending: int | None = None
        self._base = base
        head.forward = self._forward  # an instance attribute: hooks (ZeRO-3, FSDP) still wrap the call
        base.loss_function = self.loss_function

    def remove(self) -> None:
        """The plain head and loss again."""
        del self.head.forward
        del self._base._loss_function

    @contextlib.contextmanager
    def targets(self, shift_labels: torch.Tensor | None):
        """For the forward inside: the head returns the losses of these targets (flat, one per kept position)."""
        self._targets = shift_labels
        try:
            yield
        finally:
            self._targets = self._pending = None

    def _forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self._targets is None:
            return self._plain_forward(hidden)
        targets, self._targets = self._targets, None  # one head call per armed forward
        flat = hidden.reshape(-1, hidden.shape[-1])
        if flat.shape[0] != targets.numel():
            raise ValueError(f"linear_cross_entropy: {flat.shape[0]} positions reach the LM head for "
                             f"{targets.numel()} targets (the batch needs logits_at_labels' logits_to_keep)")
        losses = chunked_losses(flat, self.head.weight, self.head.bias, targets.reshape(-1).to(flat.device))
        self._pending = losses.numel()
        return losses

    def loss_function(self, logits, labels, vocab_size: int, num_items_in_batch=None,
                      ignore_index: int = IGNORE_INDEX, shift_labels=None, **kwargs):
        """transformers' causal-LM loss signature; the head's losses summed and divided as ``ForCausalLMLoss``
        does, anything else to the model's own loss."""
        if self._pending is None or logits.shape != (self._pending,):
            return self._plain_loss(logits, labels, vocab_size, num_items_in_batch=num_items_in_batch,
                                    ignore_index=ignore_index, shift_labels=shift_labels, **kwargs)
        self._pending = None
        total = logits.float().sum()
        if num_items_in_batch is None:  # a mean over the targets, as cross_entropy's "mean" is
            return total / (shift_labels != ignore_index).sum()
        if hasattr(num_items_in_batch, "to"):
            num_items_in_batch = num_items_in_batch.to(total.device)
        return total / num_items_in_batch
