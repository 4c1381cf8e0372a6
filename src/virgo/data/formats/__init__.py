"""Dataset formats for long-thought examples: read any into records, write records into any.

=============  =====================================================================================
name           layout
=============  =====================================================================================
virgo          virgo JSONL records (``thought`` + ``solution``, or ``response``), ``.jsonl``
llamafactory   LLaMA-Factory ShareGPT JSON (``messages`` + ``images``), the paper's format, ``.json``
still          STILL-2 JSONL (``question``, ``combined_text``, ``domain``), ``.jsonl``
hf             Hugging Face ``datasets`` ``save_to_disk`` directory
parquet        one parquet file with the ``hf`` columns, ``.parquet``
=============  =====================================================================================

Every reader returns a ``virgo.records.ReadResult``: good records with their line (or row) numbers, and one
located ``RecordError`` per bad item, so bad input never hides good records. Records -> any format -> records
gives equal records (kind, extras, images, domain and source included, and a thought or solution with
whitespace at its ends): the formats that store the rendered response (llamafactory, still) split it back with
``virgo.thought.split_response``, and mark an SFTExample whose response would read back as a long thought with
``"kind": "sft"``. A file -> records -> the same format keeps every response byte for byte (see
``common.example_from_response``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from virgo.data.formats import hf, llamafactory, still, virgo
from virgo.data.formats.common import first_row
from virgo.records import ReadResult


@dataclass(frozen=True)
class Format:
    name: str
    read: Callable[..., ReadResult]  # read(path, *, normalize=False) -> ReadResult
    write: Callable[[Path, Iterable[Any]], int]  # write(path, records) -> count
    help: str


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("virgo", virgo.read, virgo.write, "virgo JSONL records"),
    Format("llamafactory", llamafactory.read, llamafactory.write,
           "LLaMA-Factory ShareGPT JSON (messages + images), as the paper trained from"),
    Format("still", still.read, still.write, "STILL-2 JSONL (question, combined_text, domain)"),
    Format("hf", hf.read, hf.write, "Hugging Face datasets save_to_disk directory"),
    Format("parquet", hf.read_parquet, hf.write_parquet, "parquet file with the hf columns"),
)}
ALIASES = {"sharegpt": "llamafactory", "lf": "llamafactory", "jsonl": "virgo", "datasets": "hf"}
FORMAT_HELP = ", ".join(FORMATS) + " (aliases: " + ", ".join(f"{a}={b}" for a, b in ALIASES.items()) + ")"


def get_format(name: str) -> Format:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in FORMATS:
        raise ValueError(f"unknown format {name!r}; one of {FORMAT_HELP}")
    return FORMATS[key]


def detect_format(path: str | Path, *, output: bool = False) -> str:
    """The format of ``path`` from its suffix (and, for an existing ``.jsonl``, its first row's fields)."""
    p = Path(path)
    if p.is_dir() or (output and p.suffix == "" and not p.is_file()):
        return "hf"
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        return "parquet"
    if suffix == ".json":
        return "llamafactory"
    if suffix == ".jsonl":
        if output or not p.exists():
            return "virgo"
        row = first_row(p) or {}
        if "combined_text" in row:
            return "still"
        if "messages" in row or "conversations" in row:
            return "llamafactory"
        return "virgo"
    raise ValueError(f"{p}: cannot tell the format from the name; pass it explicitly ({FORMAT_HELP})")


def output_format(path: str | Path, fmt: str | None, input_format: str) -> Format:
    """The format to write a subset of an ``input_format`` dataset in: ``fmt`` if given, else what the output
    name says (.json, .parquet, a directory), else -- for ``.jsonl`` -- the input's own JSONL layout."""
    if fmt:
        return get_format(fmt)
    by_name = detect_format(path, output=True)
    if by_name == "virgo" and input_format in ("still", "llamafactory"):
        return get_format(input_format)
    return get_format(by_name)


def resolve_format(path: str | Path, name: str | None, *, output: bool = False) -> Format:
    return get_format(name) if name else get_format(detect_format(path, output=output))


def read_dataset(path: str | Path, fmt: str | None = None, *, normalize: bool = False) -> tuple[Format, ReadResult]:
    """Read a dataset in any format (detected when ``fmt`` is None)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or directory")
    f = resolve_format(p, fmt)
    return f, f.read(p, normalize=normalize)


def write_dataset(path: str | Path, records: Iterable[Any], fmt: str | None = None) -> int:
    p = Path(path)
    return resolve_format(p, fmt, output=True).write(p, records)


__all__ = [
    "ALIASES",
    "FORMATS",
    "FORMAT_HELP",
    "Format",
    "detect_format",
    "get_format",
    "output_format",
    "read_dataset",
    "resolve_format",
    "write_dataset",
]
