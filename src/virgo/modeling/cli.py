"""`virgo make-tiny-model`: a tiny random Qwen VL checkpoint for tests, demos and smoke runs."""

from __future__ import annotations

import click

from virgo.config.cli import command
from virgo.modeling.config import TinyModelConfig


def make_tiny_model_cmd(cfg: TinyModelConfig) -> None:
    path = cfg.build()
    click.echo(f"wrote a tiny {cfg.family} model to {path}")


make_tiny_model = command("make-tiny-model", TinyModelConfig, make_tiny_model_cmd, help="""Build a tiny random VLM.

A model of the chosen family (random init), a locally trained tokenizer with the chat template's special tokens
and the four thought markers, and a processor whose small images cost few tokens. The directory loads with
AutoModelForImageTextToText / AutoProcessor like a real checkpoint (safetensors), so every Virgo stage runs on it
in seconds on a CPU. `import virgo` registers the processors (transformers' own need torchvision, which does not
import with this torch).""")
