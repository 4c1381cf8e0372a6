"""`virgo make-tiny-model`: a tiny random Qwen2-VL checkpoint for tests, demos and smoke runs."""

from __future__ import annotations

from pathlib import Path

import typer


def make_tiny_model_cmd(
    out: Path = typer.Option(..., "--out", help="Directory to write the model into (created if missing)."),
    size: str = typer.Option("xs", help="Preset size: xs (~0.8M params, hidden 128) or s (~5M, hidden 256)."),
    seed: int = typer.Option(0, help="Seed for the tokenizer corpus and the random weights."),
    vocab_size: int = typer.Option(None, help="Tokenizer vocabulary size (default: the preset's, 2048)."),
) -> None:
    """Build a tiny Qwen2-VL model (random init), a locally trained tokenizer with the Qwen2-VL special tokens
    and the four thought markers, and a processor whose small images cost few tokens.

    The directory loads with AutoModelForImageTextToText / AutoProcessor like a real checkpoint (safetensors),
    so every Virgo stage can run on it in seconds on a CPU.

    Loading the processor from your own Python: import virgo.modeling.processor first (or use
    virgo.modeling.load.load_processor). Without that import, AutoProcessor.from_pretrained(DIR) silently
    returns only the tokenizer, with no image processor: the processor class is registered by that module,
    because transformers' own Qwen2-VL processor needs torchvision, which does not import with this torch.
    """
    from virgo.modeling.tiny import SIZES, make_tiny_model

    if size not in SIZES:
        raise typer.BadParameter(f"unknown size {size!r}; one of {sorted(SIZES)}", param_hint="--size")
    path = make_tiny_model(out, size=size, seed=seed, vocab_size=vocab_size)
    typer.echo(f"wrote tiny Qwen2-VL model to {path}")


def register(app: typer.Typer) -> None:
    app.command("make-tiny-model")(make_tiny_model_cmd)
