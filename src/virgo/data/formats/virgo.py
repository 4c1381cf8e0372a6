"""virgo's own JSONL records (``virgo.records``): one JSON object per line, image paths relative to the file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from virgo.data.formats.common import portable_images
from virgo.records import ReadResult, Record, example_from_dict, read_records, write_records


class ExampleRows:
    """A long-thought example (thought + solution) or a generic one (response), told apart by their fields."""

    from_dict = staticmethod(example_from_dict)


def to_row(rec: Record, out_dir: Path) -> dict[str, Any]:
    row = rec.to_dict()
    for name in rec.IMAGE_FIELDS:
        value = row.get(name)
        if isinstance(value, list):
            row[name] = portable_images(value, out_dir)
        elif isinstance(value, str):
            row[name] = portable_images([value], out_dir)[0]
    return row


def read(path: Path, *, normalize: bool = False, parser: Any = ExampleRows) -> ReadResult:
    # Converting, describing or selecting records does not open their images: a missing one is not an error here.
    return read_records(path, parser, strict=False, check_images=False)


def write(path: Path, records: Iterable[Record]) -> int:
    return write_records(path, (to_row(r, path.parent) for r in records))
