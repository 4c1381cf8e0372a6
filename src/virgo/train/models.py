"""Where the base model comes from: a path or hub id, or ``tiny:SIZE[:SEED]`` for a cached tiny random model."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

TINY_PREFIX = "tiny:"


def cache_dir() -> Path:
    return Path(os.environ.get("VIRGO_CACHE", Path.home() / ".cache" / "virgo"))


def resolve_model(name: str) -> str:
    """``tiny:xs`` -> a tiny Qwen2-VL built once into the cache (``$VIRGO_CACHE``); anything else is returned as is.

    The build goes to a temporary directory renamed into place, so processes racing to build it (several ranks,
    several runs) never see a half-written model.
    """
    if not name.startswith(TINY_PREFIX):
        return name
    from virgo.modeling.tiny import SIZES, make_tiny_model

    size, _, seed = name[len(TINY_PREFIX):].partition(":")
    if size not in SIZES:
        raise ValueError(f"model {name!r}: tiny size must be one of {sorted(SIZES)}")
    seed_n = int(seed or 0)
    target = cache_dir() / "tiny-models" / f"{size}-seed{seed_n}"
    if (target / "config.json").exists():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    make_tiny_model(tmp, size=size, seed=seed_n)
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared
    try:
        tmp.rename(target)
    except OSError:  # another process finished first; its copy is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return str(target)
