"""A Qwen2-VL processor that works without torchvision.

transformers' ``Qwen2VLProcessor`` insists on a video processor, which needs torchvision; the CPU
torch we pin has no working torchvision (``operator torchvision::nms does not exist``). This subclass
drops the video processor from the signature, and is registered with ``AutoProcessor`` when this
module is imported, so ``AutoProcessor.from_pretrained(dir)`` of a directory it saved returns it.
Real Qwen2-VL checkpoints load with their own processor class where torchvision works.

Import this module first. The registration lives in the importing process only: in a Python that has
not imported it, ``AutoProcessor.from_pretrained(dir)`` of a ``virgo make-tiny-model`` directory does
not fail but silently returns the bare tokenizer (no image processor, so images are rejected or
ignored). ``import virgo`` alone does not register it either (the CLI stays fast to start); use::

    import virgo.modeling.processor  # noqa: F401  (registers VirgoQwen2VLProcessor)
    processor = AutoProcessor.from_pretrained(dir)

or ``virgo.modeling.load.load_processor(dir)``, which does both.
"""

from __future__ import annotations

from transformers import AutoProcessor, Qwen2VLConfig, Qwen2VLProcessor


class VirgoQwen2VLProcessor(Qwen2VLProcessor):
    attributes = ["image_processor", "tokenizer"]

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template, **kwargs)


AutoProcessor.register(Qwen2VLConfig, VirgoQwen2VLProcessor, exist_ok=True)
