"""Placeholder: replaced by the stage implementation."""

from __future__ import annotations

import typer

def train_cmd() -> None:
    """SFT of a Qwen2-VL-family model on long-thought data (not implemented yet)."""
    raise typer.Exit("virgo train: not implemented yet")



def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
