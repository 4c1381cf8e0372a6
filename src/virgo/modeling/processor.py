"""Processors of the supported families that work without torchvision, registered with ``AutoProcessor``.

transformers' Qwen-VL processors insist on a video processor, which needs torchvision; the CPU torch we pin has
no working torchvision (``operator torchvision::nms does not exist``). For each family this module makes a
subclass of the family's processor whose signature drops the video processor (``VirgoQwen2VLProcessor``,
``VirgoQwen2_5_VLProcessor``, ``VirgoQwen3VLProcessor``) and registers it for the family's config class, so
``AutoProcessor.from_pretrained(dir)`` of a directory it saved returns it. Real checkpoints load with their own
processor class where torchvision works.

The registration lives in the importing process. ``import virgo`` arranges it (see `virgo.modeling.hook`: it
runs `register_processors` as soon as transformers' ``AutoProcessor`` is imported, so importing virgo stays fast),
and importing this module does it at once. Without either, ``AutoProcessor.from_pretrained(dir)`` of a
``virgo make-tiny-model`` directory does not fail but silently returns the bare tokenizer.
"""

from __future__ import annotations

import logging
import sys
from functools import cache

from virgo.modeling.family import Family, families

logger = logging.getLogger(__name__)


@cache
def processor_class(family: Family) -> type:
    """The torchvision-free subclass of ``family``'s processor (one class per family, made once)."""
    from transformers import AutoProcessor

    base = _transformers_attr(family.processor_class)

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        base.__init__(self, image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template,
                      **kwargs)

    name = f"Virgo{base.__name__}"
    cls = type(name, (base,), {
        "__init__": __init__, "__module__": __name__, "__qualname__": name,
        # ProcessorMixin derives its sub-processors from the __init__ signature: image processor and tokenizer.
        "attributes": ["image_processor", "tokenizer"],
        "__doc__": f"{family.title}'s processor without the video processor (no torchvision needed).",
    })
    setattr(sys.modules[__name__], name, cls)  # importable (and picklable) as virgo.modeling.processor.<name>
    AutoProcessor.register(family.config_cls, cls, exist_ok=True)
    return cls


def _transformers_attr(name: str) -> type:
    import transformers

    return getattr(transformers, name)


def register_processors() -> None:
    """Register every family's processor with ``AutoProcessor`` (idempotent). A family whose classes this
    transformers lacks is skipped with a warning: the others still load."""
    for family in families():
        try:
            processor_class(family)
        except (ImportError, AttributeError) as e:
            logger.warning("%s processor not registered (transformers lacks it?): %s", family.title, e)


register_processors()
