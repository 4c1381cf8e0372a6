"""transformers' Trainer with fixes and additions for VLM training at scale.

Additions: FSDP2 sharded by Virgo on CPU (`virgo.train.fsdp`: saving gathers a full state dict, checkpoints hold
the full optimizer state), an optional generation-based evaluation after each evaluation (`virgo.train.geneval`),
the LM head's chunked loss armed for each forward of the loss with ``linear_cross_entropy`` (`virgo.train.headloss`),
tokens per second in every training log event (`virgo.train.throughput`), and, with a ``TokenBudgetBatchSampler``
(``virgo.train.packing``), micro-batches of one packed row of samples under a token budget instead of a fixed
number of samples. Trainer only builds fixed-size batches (its one batch sampler, ``BatchRebalanceSampler``, keeps
samples per step fixed), so the training dataloader is built here with the row sampler and prepared by accelerate
like Trainer's own (several processes get disjoint rows). Under sequence parallelism (`virgo.train.sequence`) the
ranks of a group get the same rows, through the sampler's ``copies``, and the training collator cuts each row's
loss targets to the rank's share.

The loss is the token mean over the whole global batch (every rank, every accumulation step) for every family:
Qwen2.5-VL and Qwen3-VL declare ``accepts_loss_kwargs = False`` (copied from a Gemma 3 fix, transformers #37208),
which makes the Trainer average per-rank means instead, so a rank holding a short text sample weighed as much as
one holding a long visual one. Their forward passes ``num_items_in_batch`` to the loss exactly as Qwen2-VL's does,
so the Trainer is told it may.

The fix: resuming a Qwen2-VL-family checkpoint really restores its weights.

``save_pretrained`` writes VLM checkpoints in the original key layout (``model.layers.*``, ``visual.*``), renamed
from the in-memory layout (``model.language_model.layers.*``, ``model.visual.*``). On resume, Trainer reads the
file back with a plain ``load_state_dict(strict=False)`` that skips every renamed key, so the run silently
continues from the *initial* weights with the checkpoint's optimizer state (transformers issue #43701, open in
5.23). Here the checkpoint is read through ``from_pretrained``, which applies the renaming, and loaded strictly.
DeepSpeed, FSDP and PEFT checkpoints keep Trainer's own loading (they do not go through the renaming); a model
sharded by `virgo.train.fsdp` loads the full state dict into its shards.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from torch.utils.data import DataLoader
from transformers import Trainer
from transformers.trainer_utils import seed_worker

from virgo.train import fsdp
from virgo.train.headloss import HeadLoss
from virgo.train.packing import TokenBudgetBatchSampler
from virgo.train.sequence import REAL_TOKENS, SequenceGroup, ShardedRows
from virgo.train.throughput import TokenMeter, is_training_event


class RestoreCheckpointWeights:
    """Mixin for any Trainer subclass (SFT here, GRPO in `virgo.rl`): resume reads VLM weights through
    ``from_pretrained`` (the fix in this module's docstring)."""

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        model = model if model is not None else self.model
        if self.is_deepspeed_enabled or self.is_fsdp_enabled or hasattr(model, "peft_config"):
            return super()._load_from_checkpoint(resume_from_checkpoint, model=model)
        cls = fsdp.unsharded_class(model)
        restored = cls.from_pretrained(resume_from_checkpoint, dtype=model.dtype, device_map="cpu")
        if fsdp.is_sharded(model):
            fsdp.load_full_state_dict(model, restored.state_dict())
        else:
            model.load_state_dict(restored.state_dict(), strict=True)
        del restored


class ShardedModelSupport:
    """Mixin: the Trainer hooks a model sharded by `virgo.train.fsdp.shard` needs (no move, gathered saves)."""

    def _move_model_to_device(self, model, device):
        if not fsdp.is_sharded(model):  # a sharded model stays where its shards are
            super()._move_model_to_device(model, device)

    def _save(self, output_dir: str | None = None, state_dict=None):
        if not fsdp.is_sharded(self.model):
            return super()._save(output_dir, state_dict=state_dict)
        output_dir = output_dir or self.args.output_dir
        full = fsdp.without_tied_copies(self.model, fsdp.full_state_dict(self.model))  # every rank gathers
        if self.args.should_save:
            self.model.save_pretrained(output_dir, state_dict=full, safe_serialization=True)
            if self.processing_class is not None:
                self.processing_class.save_pretrained(output_dir)
        return None

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        if not fsdp.is_sharded(self.model):
            return super()._save_optimizer_and_scheduler(output_dir)
        import torch
        from transformers.trainer import SCHEDULER_NAME

        fsdp.save_optimizer(self.model, self.optimizer, output_dir, is_main=self.args.should_save)
        if self.args.should_save:
            torch.save(self.lr_scheduler.state_dict(), f"{output_dir}/{SCHEDULER_NAME}")
        return None

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        if checkpoint is None or not fsdp.is_sharded(self.model):
            return super()._load_optimizer_and_scheduler(checkpoint)
        import os

        import torch
        from transformers.trainer import SCHEDULER_NAME

        if fsdp.load_optimizer(self.model, self.optimizer, checkpoint):
            scheduler = os.path.join(checkpoint, SCHEDULER_NAME)
            self.lr_scheduler.load_state_dict(torch.load(scheduler, map_location="cpu", weights_only=True))
        return None


class SFTTrainer(RestoreCheckpointWeights, ShardedModelSupport, Trainer):
    def __init__(self, *args, row_sampler: TokenBudgetBatchSampler | None = None, generation_eval: Any = None,
                 head_loss: HeadLoss | None = None, sequence_group: SequenceGroup | None = None, **kwargs):
        self.row_sampler = row_sampler
        self.sequence_group = sequence_group if sequence_group is not None and sequence_group.size > 1 else None
        self.generation_eval = generation_eval  # a virgo.train.geneval.GenerationEval, or None
        self.head_loss = head_loss  # linear_cross_entropy: the LM head computes the loss (virgo.train.headloss)
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = True  # the token mean over the global batch (module docstring)
        self._flops_per_token: int | None = None
        self.token_meter = TokenMeter()

    def training_step(self, model, inputs, *args, **kwargs):
        self.token_meter.count(inputs, tokens=inputs.pop(REAL_TOKENS, None))
        return super().training_step(model, inputs, *args, **kwargs)

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if is_training_event(logs):
            import torch

            local = torch.as_tensor(self.token_meter.take_local(), dtype=torch.int64, device=self.args.device)
            tokens = int(self.accelerator.reduce(local, reduction="sum").item())
            if self.args.include_num_input_tokens_seen in ("no", False):  # else the Trainer counts them itself
                self.state.num_input_tokens_seen += tokens
            logs.update(self.token_meter.fields(logs, tokens, self.state.num_input_tokens_seen))
        super().log(logs, *args, **kwargs)

    def compute_loss(self, model, inputs, *args, **kwargs):
        if self.head_loss is None:
            return super().compute_loss(model, inputs, *args, **kwargs)
        # train() attaches a head loss only with logits_at_labels, so every batch of its collator has these targets
        with self.head_loss.targets(inputs["shift_labels"]):
            return super().compute_loss(model, inputs, *args, **kwargs)

    def floating_point_ops(self, inputs: dict[str, Any]) -> int:
        """The Trainer's estimate (6 x non-embedding parameters x input tokens), with the parameter count taken once:
        the Trainer recounts every parameter on every step, 4% of a step of the demo's tiny model."""
        if self._flops_per_token is None:
            self._flops_per_token = 6 * self.model.num_parameters(exclude_embeddings=True) \
                if hasattr(self.model, "num_parameters") else 0
        ids = inputs.get(getattr(self.model, "main_input_name", "input_ids"))
        share = self.sequence_group.size if self.sequence_group is not None else 1  # a group shares one row
        return self._flops_per_token * ids.numel() // share if ids is not None else 0

    def evaluate(self, *args, **kwargs) -> dict[str, float]:
        """The dev loss, then (when configured) accuracy from generating on a benchmark slice, in one metrics dict:
        `metric_for_best_model` may name either (``eval_loss``, ``eval_accuracy``)."""
        metrics = super().evaluate(*args, **kwargs)
        if self.generation_eval is not None:
            extra = self.generation_eval.run(self)
            metrics.update(extra)
            self.log(dict(extra))
        return metrics

    def get_train_dataloader(self) -> DataLoader:
        if self.row_sampler is None:
            return super().get_train_dataloader()
        a = self.args
        collate = self.data_collator
        if self.sequence_group is not None:
            collate = ShardedRows(collate, self.sequence_group.place(), pad_token_id=collate.pad_token_id)
        loader = DataLoader(
            self.train_dataset, batch_sampler=self.row_sampler, collate_fn=collate,
            num_workers=a.dataloader_num_workers, pin_memory=a.dataloader_pin_memory,
            persistent_workers=a.dataloader_persistent_workers and a.dataloader_num_workers > 0,
            prefetch_factor=a.dataloader_prefetch_factor if a.dataloader_num_workers > 0 else None,
            worker_init_fn=partial(seed_worker, num_workers=a.dataloader_num_workers, rank=a.process_index))
        return self.accelerator.prepare(loader)
