"""Placeholder: replaced by the stage implementation."""

from __future__ import annotations

import typer

def serve_cmd() -> None:
    """OpenAI-compatible server (not implemented yet)."""
    raise typer.Exit("virgo serve: not implemented yet")


def chat_cmd() -> None:
    """Chat with a model (not implemented yet)."""
    raise typer.Exit("virgo chat: not implemented yet")


def generate_cmd() -> None:
    """Batched, resumable long generation (not implemented yet)."""
    raise typer.Exit("virgo generate: not implemented yet")



def register(app: typer.Typer) -> None:
    app.command("generate")(generate_cmd)
    app.command("chat")(chat_cmd)
    app.command("serve")(serve_cmd)
