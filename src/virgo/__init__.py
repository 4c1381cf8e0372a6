"""Virgo: slow-thinking multimodal reasoning, from long-thought data to evaluation."""

__version__ = "0.1.0"
