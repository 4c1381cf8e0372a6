"""Placeholder: replaced by the stage implementation."""

from __future__ import annotations

import typer

def grade_cmd() -> None:
    """Grade generations against gold answers (not implemented yet)."""
    raise typer.Exit("virgo grade: not implemented yet")



def register(app: typer.Typer) -> None:
    app.command("grade")(grade_cmd)
