"""transformers' Trainer with one fix: resuming a Qwen2-VL-family checkpoint really restores its weights.

``save_pretrained`` writes VLM checkpoints in the original key layout (``model.layers.*``, ``visual.*``), renamed
from the in-memory layout (``model.language_model.layers.*``, ``model.visual.*``). On resume, Trainer reads the
file back with a plain ``load_state_dict(strict=False)`` that skips every renamed key, so the run silently
continues from the *initial* weights with the checkpoint's optimizer state (transformers issue #43701, open in
5.23). Here the checkpoint is read through ``from_pretrained``, which applies the renaming, and loaded strictly.
DeepSpeed, FSDP and PEFT checkpoints keep Trainer's own loading (they do not go through the renaming).
"""

from __future__ import annotations

from transformers import Trainer


class SFTTrainer(Trainer):
    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        model = model if model is not None else self.model
        if self.is_deepspeed_enabled or self.is_fsdp_enabled or hasattr(model, "peft_config"):
            return super()._load_from_checkpoint(resume_from_checkpoint, model=model)
        restored = type(model).from_pretrained(resume_from_checkpoint, dtype=model.dtype, device_map="cpu")
        model.load_state_dict(restored.state_dict(), strict=True)
        del restored
