"""Placeholder: replaced by the data tools implementation."""

from __future__ import annotations

import typer

data_app = typer.Typer(help="Long-thought data: convert, stats, select, validate.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
