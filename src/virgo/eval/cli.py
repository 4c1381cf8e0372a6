"""Placeholder: replaced by the stage implementation."""

from __future__ import annotations

import typer

def report_cmd() -> None:
    """Render reports (not implemented yet)."""
    raise typer.Exit("virgo report: not implemented yet")


def eval_cmd() -> None:
    """Evaluate on a benchmark (not implemented yet)."""
    raise typer.Exit("virgo eval: not implemented yet")



def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)
    app.command("report")(report_cmd)
