"""Hugging Face ``datasets``: a ``save_to_disk`` directory, or one parquet file.

Columns: ``id, kind, question, thought, solution, response, images, answer, domain, source, extra_json``.
``kind`` is ``long_thought`` (thought and solution set; ``response`` is their rendering, for trainers that want
one text column) or ``sft`` (only ``response``). ``extra_json`` holds the record's extra fields as one JSON
object: extras differ from record to record, and one string column keeps the table schema fixed.

Datasets written by others are read too, by their columns: ``messages``/``conversations`` (LLaMA-Factory),
``combined_text`` (STILL) or virgo record fields (``thought``/``solution`` or ``response``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from virgo.data.formats.common import KINDS, Example, collect, portable_images
from virgo.data.formats.llamafactory import LlamaFactoryRows
from virgo.data.formats.still import StillRows
from virgo.data.formats.virgo import ExampleRows
from virgo.records import LongThoughtExample, ReadResult, RecordError
from virgo.records.jsonl import loads

STRING_COLUMNS = ("id", "kind", "question", "thought", "solution", "response", "answer", "domain", "source",
                  "extra_json")


def features():
    from datasets import Features, List, Value

    cols = {c: Value("string") for c in STRING_COLUMNS}
    cols["images"] = List(Value("string"))
    order = ["id", "kind", "question", "thought", "solution", "response", "images", "answer", "domain", "source",
             "extra_json"]
    return Features({c: cols[c] for c in order})


def to_row(rec: Example, out_dir: Path) -> dict[str, Any]:
    lt = isinstance(rec, LongThoughtExample)
    return {"id": rec.id, "kind": "long_thought" if lt else "sft", "question": rec.question,
            "thought": rec.thought if lt else None, "solution": rec.solution if lt else None,
            "response": rec.response, "images": portable_images(rec.images, out_dir),
            "answer": rec.answer if lt else None, "domain": rec.domain, "source": rec.source,
            "extra_json": json.dumps(rec.extra, ensure_ascii=False)}


class HFRows:
    """Rows written by ``to_row``."""

    def from_dict(self, data: Any, *, base_dir: Path | None = None) -> Example:
        row = dict(data)
        kind = row.pop("kind", None)
        if kind not in KINDS:
            raise RecordError(f"expected one of {sorted(KINDS)}, got {kind!r}", field="kind")
        if kind == "long_thought":
            row.pop("response", None)  # derived from thought and solution
        else:
            for name in ("thought", "solution"):
                if row.pop(name, None) is not None:
                    raise RecordError("must be empty when kind is 'sft'", field=name)
        for name in ("thought", "solution", "answer", "domain", "source"):
            if name in row and row[name] is None:
                del row[name]  # a null cell is an unset field
        extra_text = row.pop("extra_json", None) or "{}"
        try:
            extra = loads(extra_text)
        except RecordError as e:
            raise RecordError(e.message, field="extra_json") from None
        if not isinstance(extra, dict):
            raise RecordError(f"expected a JSON object, got {type(extra).__name__}", field="extra_json")
        for k, v in extra.items():
            if k in row:
                raise RecordError(f"extra field {k!r} is also a column", field="extra_json")
            row[k] = v
        return KINDS[kind].from_dict(row, base_dir=base_dir)


def parser_for_columns(columns: Iterable[str], normalize: bool = False) -> Any:
    cols = set(columns)
    if "kind" in cols and "extra_json" in cols:
        return HFRows()
    if cols & {"messages", "conversations"}:
        return LlamaFactoryRows(normalize)
    if "combined_text" in cols:
        return StillRows(normalize)
    return ExampleRows


def load_rows(path: Path, fmt: str) -> tuple[list[str], list[dict[str, Any]]]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return table.column_names, table.to_pylist()
    from datasets import DatasetDict, load_from_disk

    ds = load_from_disk(str(path))
    if isinstance(ds, DatasetDict):
        if len(ds) != 1:
            raise ValueError(f"{path}: a DatasetDict with splits {sorted(ds)}; pass one split's directory")
        ds = next(iter(ds.values()))
    return ds.column_names, ds.to_list()


def read(path: Path, *, normalize: bool = False, fmt: str = "hf") -> ReadResult:
    """Rows are numbered from 1 where a JSONL reader would give line numbers."""
    columns, rows = load_rows(path, fmt)
    parser = parser_for_columns(columns, normalize)
    items = ((i, json.dumps(r, ensure_ascii=False, default=str), r, None) for i, r in enumerate(rows, start=1))
    return collect(items, parser, path, path if path.is_dir() else path.parent)


def _dataset(records: Iterable[Example], out_dir: Path):
    from datasets import Dataset

    return Dataset.from_list([to_row(r, out_dir) for r in records], features=features())


def write(path: Path, records: Iterable[Example]) -> int:
    """``save_to_disk`` into a fresh directory (written beside it, then renamed into place)."""
    ds = _dataset(records, path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    ds.save_to_disk(str(tmp))
    if path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    os.replace(tmp, path)
    return len(ds)


def write_parquet(path: Path, records: Iterable[Example]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = _dataset(records, path.parent)
    tmp = path.with_name(path.name + ".tmp")
    ds.to_parquet(str(tmp))
    os.replace(tmp, path)
    return len(ds)


def read_parquet(path: Path, *, normalize: bool = False) -> ReadResult:
    return read(path, normalize=normalize, fmt="parquet")
