"""Where a model comes from: a local directory or a Hugging Face hub id, told apart before anything loads.

Without this check a mistyped local path reaches ``from_pretrained``, which takes it for a hub id and fails
70 lines later with "Repo id must use alphanumeric chars". A name that cannot be a hub id and is not a directory
is reported in one line here.
"""

from __future__ import annotations

import re
from pathlib import Path

# A hub id: "name" or "owner/name" of letters, digits, '-', '_' and '.', not starting or ending with '-' or '.'.
HUB_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


class ModelNotFound(FileNotFoundError):
    """A model name that is neither an existing directory nor a possible hub id."""

    user_facing = True  # the CLI prints it as one line (virgo.config.cli), no traceback


def check_model_exists(name: str | Path | None) -> str:
    """``name`` back when it is an existing directory or could be a hub id; else one clear error."""
    if name is None:
        raise ModelNotFound("no model given")
    text = str(name)
    path = Path(text).expanduser()
    if path.is_dir():
        return text
    if path.exists():
        raise ModelNotFound(f"{text}: not a model directory (a file)")
    looks_local = text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text
    if looks_local or not HUB_ID.match(text) or text.startswith("tiny:"):
        raise ModelNotFound(f"{text}: no such model directory, and not a hub id")
    return text
