"""Placeholder: replaced by the stage implementation."""

from __future__ import annotations

import typer

def demo_cmd() -> None:
    """Run the toy reproduction of the paper's central experiment (not implemented yet)."""
    raise typer.Exit("virgo demo: not implemented yet")



def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)
