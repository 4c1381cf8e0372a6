"""Virgo: slow-thinking multimodal reasoning, from long-thought data to evaluation."""

from virgo.modeling.hook import install as _register_processors_on_demand

__version__ = "0.1.0"

# AutoProcessor.from_pretrained(dir) of a Virgo model directory needs Virgo's processor classes registered; this
# registers them when transformers' AutoProcessor is first imported, so `import virgo` stays fast.
_register_processors_on_demand()
