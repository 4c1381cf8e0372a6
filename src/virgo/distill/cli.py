"""Placeholder: replaced by the stage implementation."""

from __future__ import annotations

import typer

def distill_cmd() -> None:
    """Teacher rollouts, correctness filtering and difficulty bands (not implemented yet)."""
    raise typer.Exit("virgo distill: not implemented yet")



def register(app: typer.Typer) -> None:
    app.command("distill")(distill_cmd)
