"""Run headers: the settings an append-only output was written with, kept beside it and checked on every rerun.

Long jobs resume by key (a generation by ``(id, sample)``): a rerun skips what the output already holds. A rerun
with another model or other decoding settings into the same file would silently mix two runs, so each job keeps
a small JSON header beside its output (``OUT.run.json`` for ``OUT.jsonl``) holding the settings that decide
what it writes (its *identity*). A rerun whose identity differs refuses with one error naming each setting that
differs, old value and new, unless forced; a forced rerun records what changed in the header's ``forced`` list.
``virgo eval`` guards its run folder (``run.json``) with the same comparison and error.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HEADER_SUFFIX = ".run.json"


class RunMismatchError(ValueError):
    """An output (or run folder) was written with other settings than the ones asked for now."""

    user_facing = True  # the CLI prints it as one line, no traceback (virgo.config.cli)


def header_path(out: str | Path) -> Path:
    """Where the header of ``out`` lives: ``runs/gens.jsonl`` -> ``runs/gens.run.json``."""
    out = Path(out)
    return out.with_name(out.stem + HEADER_SUFFIX)


def differences(old: dict[str, Any], new: dict[str, Any], keys: Iterable[str] | None = None,
                prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, old value, new value) for every differing key, nested dicts compared key by key."""
    out: list[tuple[str, Any, Any]] = []
    for k in (list(keys) if keys is not None else list(dict.fromkeys([*old, *new]))):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, prefix=f"{prefix}{k}.")
        elif a != b:
            out.append((f"{prefix}{k}", a, b))
    return out


def describe(diffs: list[tuple[str, Any, Any]]) -> str:
    """``model: 'a' -> 'b'; temperature: 0.0 -> 0.7`` (long values shortened: one line for a terminal)."""
    def short(v: Any) -> str:
        r = repr(v)
        return r if len(r) <= 80 else r[:77] + "..."

    return "; ".join(f"{k}: {short(a)} -> {short(b)}" for k, a, b in diffs)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def read_header(out: str | Path) -> dict[str, Any] | None:
    """The header beside ``out``, or None when there is none (an unreadable one is an error: it guards data)."""
    path = header_path(out)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise RunMismatchError(f"{path}: the run header is not valid JSON ({e}); delete it to start a new header "
                               f"(the output's records are kept)") from None
    if not isinstance(data, dict) or not isinstance(data.get("identity"), dict):
        raise RunMismatchError(f"{path}: not a run header (no 'identity' object)")
    return data


def write_header(out: str | Path, header: dict[str, Any]) -> None:
    path = header_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(header, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _has_content(out: str | Path) -> bool:
    try:
        return Path(out).stat().st_size > 0
    except OSError:
        return False


def guard(out: str | Path, kind: str, identity: dict[str, Any], *, force: bool = False,
          previous: dict[str, Any] | None = None, info: dict[str, Any] | None = None) -> list[tuple[str, Any, Any]]:
    """Check that ``out`` may be resumed with ``identity``; write or update its header. Returns the differences
    that ``force`` let through (empty when the settings match).

    ``previous`` is what an output without a header is known to have been written with (e.g. read from its
    records): only the keys it has are compared. Raises RunMismatchError naming each differing setting.
    ``info`` (backend, URL, ...) is recorded but never compared. An empty or missing output is never refused.
    """
    header = read_header(out)
    if not _has_content(out):
        header = previous = None  # nothing written yet: whatever an old header says, there is nothing to mix
    if header is not None:
        diffs = differences(header["identity"], identity)
    elif previous is not None:
        diffs = differences(previous, identity, keys=previous)
    else:
        diffs = []
    if diffs and not force:
        raise RunMismatchError(
            f"{out} was written with other settings ({describe(diffs)}). Resuming would mix two runs in one file: "
            f"write to another output, or force it (--force) to append anyway.")
    if header is not None and not diffs:
        return []
    new = {"kind": kind, "identity": identity, "info": info or {},
           "created": header.get("created") if header else _now(),
           "forced": list(header.get("forced", [])) if header else []}
    if diffs:
        new["forced"].append({"at": _now(), "changed": {k: [a, b] for k, a, b in diffs}})
    write_header(out, new)
    return diffs
