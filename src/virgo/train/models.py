"""Where the base model comes from: a path or hub id, or ``tiny:[FAMILY:]SIZE[:SEED]`` for a cached tiny random
model (``tiny:xs``, ``tiny:qwen3_vl:xs:1``; the family defaults to Qwen2-VL)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

TINY_PREFIX = "tiny:"


def cache_dir() -> Path:
    return Path(os.environ.get("VIRGO_CACHE", Path.home() / ".cache" / "virgo"))


def parse_tiny(name: str) -> tuple[str, str, int]:
    """(family, size, seed) of ``tiny:[FAMILY:]SIZE[:SEED]``."""
    from virgo.modeling.family import UnsupportedModelError, family_names, get_family
    from virgo.modeling.tiny import DEFAULT_FAMILY, SIZES

    parts = name[len(TINY_PREFIX):].split(":")
    family = DEFAULT_FAMILY
    if len(parts) > 1 and parts[0] not in SIZES:
        try:
            family = get_family(parts.pop(0)).name
        except UnsupportedModelError as e:
            raise ValueError(f"model {name!r}: {e}") from None
    if parts[0] not in SIZES or len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ValueError(f"model {name!r}: expected tiny:[FAMILY:]SIZE[:SEED]; tiny size must be one of "
                         f"{sorted(SIZES)}, FAMILY one of {family_names()}, SEED a number")
    return family, parts[0], int(parts[1]) if len(parts) == 2 else 0


def resolve_model(name: str) -> str:
    """``tiny:xs`` -> a tiny model built once into the cache (``$VIRGO_CACHE``); anything else is returned as is.

    The build goes to a temporary directory renamed into place, so processes racing to build it (several ranks,
    several runs) never see a half-written model.
    """
    if not name.startswith(TINY_PREFIX):
        return name
    from virgo.modeling.tiny import DEFAULT_FAMILY, make_tiny_model

    family, size, seed = parse_tiny(name)
    stem = f"{size}-seed{seed}" if family == DEFAULT_FAMILY else f"{family}-{size}-seed{seed}"
    target = cache_dir() / "tiny-models" / stem
    if (target / "config.json").exists():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    make_tiny_model(tmp, family=family, size=size, seed=seed)
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared
    try:
        tmp.rename(target)
    except OSError:  # another process finished first; its copy is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return str(target)
