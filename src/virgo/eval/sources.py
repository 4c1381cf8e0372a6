"""Shared helpers for benchmark loaders: finding files, reading rows, images, options and placeholders.

Every loader in ``virgo.eval.benchmarks`` reads its official layout through these functions, so
file lookup, the "where do I get this file" error, literal-list parsing, option formatting, image
placeholders and image extraction from parquet exist once.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from virgo.records import RecordError
from virgo.records.jsonl import iter_lines, loads

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class DataMissingError(FileNotFoundError):
    """A benchmark file is not where the loader looked: says which file, where it looked, where it comes from."""

    def __init__(self, benchmark: str, what: str, tried: Iterable[Path], source: str | None):
        self.benchmark, self.what, self.tried, self.source = benchmark, what, [str(t) for t in tried], source
        lines = [f"{benchmark}: {what} not found. Looked in:"] + [f"  - {t}" for t in self.tried]
        if source:
            lines.append(f"Get it from: {source}")
        super().__init__("\n".join(lines))


def locate(data_dir: Path, relpath: str, *, benchmark: str, source: str | None, what: str | None = None) -> Path:
    """Find ``relpath`` under ``data_dir``: as given, by base name (also in ``data/``), or under
    ``data_dir/<benchmark>``."""
    data_dir = Path(data_dir)
    rel = Path(relpath)
    candidates = [data_dir / rel, data_dir / rel.name, data_dir / "data" / rel.name,
                  data_dir / benchmark / rel, data_dir / benchmark / rel.name]
    seen: list[Path] = []
    for c in candidates:
        if c not in seen:
            seen.append(c)
        if c.is_file():
            return c
    raise DataMissingError(benchmark, what or f"file {relpath!r}", seen, source)


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, row) from a .jsonl, .json (a list, or {id: row}) or .parquet file.

    Row numbers are 1-based lines for JSONL and 1-based positions otherwise; errors name file and row.
    """
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        # The records' own reader (any line ending, BOM, strict JSON, located UTF-8 errors). A bad row still
        # stops the load: a benchmark with rows left out would report accuracy over a different item set.
        for lineno, text, problem in iter_lines(path):
            try:
                if text is None:
                    raise RecordError(problem or "not valid UTF-8")
                row = loads(text)
            except RecordError as e:
                raise e.located(path, lineno) from None
            if not isinstance(row, dict):
                raise RecordError(f"expected a JSON object, got {type(row).__name__}", path=path, line=lineno)
            yield lineno, row
    elif suffix == ".json":
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise RecordError(f"invalid JSON ({e.msg} at line {e.lineno})", path=path) from None
        if isinstance(data, dict):  # {id: row} layout
            data = [{"id": k, **v} if isinstance(v, dict) else v for k, v in data.items()]
        if not isinstance(data, list):
            raise RecordError(f"expected a JSON list of objects, got {type(data).__name__}", path=path)
        for i, row in enumerate(data, start=1):
            if not isinstance(row, dict):
                raise RecordError(f"item {i}: expected a JSON object, got {type(row).__name__}", path=path)
            yield i, row
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        for i, row in enumerate(table.to_pylist(), start=1):
            yield i, row
    else:
        raise RecordError(f"unsupported file type {suffix!r} (expected .jsonl, .json or .parquet)", path=path)


def as_list(value: Any, *, field: str, path: Path | None = None, row: int | None = None) -> list[Any]:
    """A list field that may be stored as a list, a Python-literal list string ("['a', 'b']"), or a scalar.

    Strings are parsed only with ``ast.literal_eval`` (a literal parser: no names, calls or code).
    """
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("[") and s.endswith("]"):
            try:
                parsed = ast.literal_eval(s)
            except (ValueError, SyntaxError) as e:
                raise RecordError(f"not a literal list: {e.__class__.__name__}", field=field, path=path, line=row)
            if isinstance(parsed, (list, tuple)):
                return list(parsed)
        return [value]
    return [value]


def format_choices(choices: list[str]) -> str:
    """The options block appended to a multiple-choice question: ``Choices:\\nA. ...\\nB. ...``."""
    if len(choices) > len(LETTERS):
        raise ValueError(f"{len(choices)} options; at most {len(LETTERS)} are supported")
    return "Choices:\n" + "\n".join(f"{LETTERS[i]}. {str(c).strip()}" for i, c in enumerate(choices))


# <image1>, <image 1>, <image_1>: the placeholder spellings of MathVision, MMMU and OlympiadBench.
IMAGE_PLACEHOLDER = re.compile(r"<image[ _]?(\d+)>")


def image_label(k: int) -> str:
    """How an image is referred to in question text once the images are moved in front of it."""
    return f"[image {k}]"


def rewrite_placeholders(text: str, mapping: dict[int, int] | None = None) -> str:
    """Replace ``<image N>``-style placeholders by ``[image k]``.

    The chat template puts every image before the text (as Virgo does), so an inline placeholder
    cannot mark the image's position; it becomes a textual reference to the k-th image shown.
    ``mapping`` sends the benchmark's number N to the position k in the image list (identity if None;
    numbers missing from the mapping are left as the benchmark's own number).
    """
    def sub(m: re.Match) -> str:
        n = int(m.group(1))
        return image_label(mapping.get(n, n) if mapping else n)

    return IMAGE_PLACEHOLDER.sub(sub, text)


def resolve_image(rel: str, roots: Iterable[Path], *, benchmark: str, source: str | None, item: str) -> str:
    """Absolute path of an image named relative to one of ``roots`` (the first that has it)."""
    tried = []
    for root in roots:
        p = Path(root) / rel
        tried.append(p)
        if p.is_file():
            return str(p.resolve())
    raise DataMissingError(benchmark, f"image {rel!r} of item {item}", tried, source)


def image_cache_dir(data_dir: Path, benchmark: str) -> Path:
    """Where images stored inside data files (parquet bytes) are written out as files.

    Next to the data when writable (so a dataset carries its own cache); else under
    ``$VIRGO_CACHE`` or ``~/.cache/virgo``.
    """
    local = Path(data_dir) / ".virgo-images"
    try:
        local.mkdir(parents=True, exist_ok=True)
        if os.access(local, os.W_OK):
            return local
    except OSError:
        pass
    base = Path(os.environ.get("VIRGO_CACHE", Path.home() / ".cache" / "virgo"))
    digest = hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:12]
    out = base / "images" / f"{benchmark}-{digest}"
    out.mkdir(parents=True, exist_ok=True)
    return out


def materialize_image(cell: Any, cache_dir: Path, stem: str) -> str | None:
    """Write an embedded image (a HF ``{"bytes", "path"}`` cell) to ``cache_dir`` once; return its path.

    Returns None for an empty cell. The file name is ``stem`` plus the original suffix, so reruns
    find the same file and never rewrite it.
    """
    if cell is None:
        return None
    if isinstance(cell, dict):
        data, orig = cell.get("bytes"), cell.get("path")
    else:
        return None
    if not data:
        return None
    suffix = Path(orig).suffix.lower() if orig else ""
    if suffix not in (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"):
        suffix = _sniff_suffix(data)
    out = Path(cache_dir) / f"{_safe(stem)}{suffix}"
    if not out.exists() or out.stat().st_size != len(data):
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, out)
    return str(out.resolve())


def _sniff_suffix(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data.startswith(b"\xff\xd8"):
        return ".jpg"
    if data[:4] == b"GIF8":
        return ".gif"
    return ".img"


def _safe(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)


def text_or_none(value: Any) -> str | None:
    """A field as stripped text; None for missing/empty/NaN values."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):  # NaN from parquet
        return None
    s = str(value).strip()
    return s or None


def require_text(row: dict[str, Any], *keys: str) -> None:
    """RecordError ("missing or empty", naming the field) for the first of ``keys`` without text in ``row``."""
    for key in keys:
        if text_or_none(row.get(key)) is None:
            raise RecordError("missing or empty", field=key)


def read_problems(path: Path, make: Callable[[dict[str, Any]], Any]) -> list[Any]:
    """``make(row)`` for every row of ``path``; a bad row's RecordError names the file and row (good rows are
    never dropped silently: a loader fails on the first bad one, with its location)."""
    out = []
    for row_no, row in read_rows(path):
        try:
            out.append(make(row))
        except RecordError as e:
            raise e.located(path, row_no) from None
    return out
