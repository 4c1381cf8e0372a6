"""JSONL persistence for records: strict reading with located errors, append-only durable writing."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from virgo.records.base import Record, RecordError

T = TypeVar("T", bound=Record)


@dataclass
class ReadResult:
    """Good records and located errors from one file: bad lines never hide good ones."""

    records: list = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    raw_rejects: list[tuple[int, str]] = field(default_factory=list)  # (line number, raw line text)
    lines: list[int] = field(default_factory=list)  # line number of each good record, parallel to ``records``
    # Lines read with ``replace_invalid_utf8``: (line number, what was wrong) of good records whose bytes were
    # not valid UTF-8 and were decoded with U+FFFD replacement characters.
    replaced: list[tuple[int, str]] = field(default_factory=list)


# What ``json`` raises on hostile text besides syntax errors (JSONDecodeError is a ValueError): RecursionError
# for nesting deeper than Python's recursion limit (a line of 200,000 "["), and ValueError for an integer
# literal longer than ``sys.get_int_max_str_digits()`` (4,300 digits by default).
JSON_ERRORS = (ValueError, RecursionError)


def json_error(e: ValueError | RecursionError) -> str:
    """One wording for every way ``json`` rejects a text (json's own syntax messages end in 'at' before a
    position; the other two name Python internals rather than what is wrong with the data)."""
    if isinstance(e, json.JSONDecodeError):
        return f"invalid JSON: {e.msg} (column {e.colno})"
    if isinstance(e, RecursionError):
        return "invalid JSON: nested too deeply (arrays or objects deeper than Python's recursion limit)"
    if "integer string conversion" in str(e):
        return f"invalid JSON: an integer literal longer than {sys.get_int_max_str_digits()} digits"
    return f"invalid JSON: {e}"


def loads(text: str) -> Any:
    """``json.loads`` for untrusted text: whatever is wrong with it comes out as a RecordError."""
    try:
        return json.loads(text)
    except JSON_ERRORS as e:
        raise RecordError(json_error(e)) from None


def iter_lines(path: str | Path, *, replace_invalid: bool = False) -> Iterator[tuple[int, str | None, str | None]]:
    """Yield (line number, decoded text or None, UTF-8 problem or None); blank lines skipped.

    A line that is not valid UTF-8 gives text None, or with ``replace_invalid`` its text with U+FFFD for
    each bad byte; the problem is reported either way.
    """
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                yield lineno, raw.decode("utf-8"), None
            except UnicodeDecodeError as e:
                problem = f"not valid UTF-8 (byte {e.start}: {raw[e.start:e.start + 1]!r})"
                yield lineno, raw.decode("utf-8", errors="replace") if replace_invalid else None, problem


def read_records(path: str | Path, cls: type[T], *, strict: bool = True, resolve_images: bool = True,
                 replace_invalid_utf8: bool = False) -> list[T] | ReadResult:
    """Read a JSONL file of ``cls`` records.

    strict=True raises the first RecordError (with file and line); strict=False returns a ReadResult
    with every good record and one error per bad line. A line that is not valid UTF-8 is a bad line, unless
    ``replace_invalid_utf8``: then it is decoded with U+FFFD for each bad byte, read like any other line, and
    listed in ``ReadResult.replaced`` when it makes a good record (for model output, which must be graded
    whatever bytes it holds, rather than dropped).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    base = path.parent if resolve_images else None
    result = ReadResult()
    for lineno, text, decode_error in iter_lines(path, replace_invalid=replace_invalid_utf8):
        try:
            if text is None:
                raise RecordError(decode_error)
            result.records.append(cls.from_dict(loads(text), base_dir=base))
            result.lines.append(lineno)
            if decode_error is not None:
                result.replaced.append((lineno, decode_error))
        except RecordError as e:
            err = e.located(path, lineno)
            if strict:
                raise err from None
            result.errors.append(err)
            raw = text if text is not None else "<undecodable line>"
            result.raw_rejects.append((lineno, raw.rstrip("\n")))
    return result.records if strict else result


def dumps(record: Record | dict[str, Any]) -> str:
    data = record.to_dict() if isinstance(record, Record) else record
    return json.dumps(data, ensure_ascii=False)


def write_records(path: str | Path, records: Iterable[Record | dict[str, Any]]) -> int:
    """Write records to a fresh file atomically (temp file + rename); returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(dumps(r) + "\n")
            n += 1
    os.replace(tmp, path)
    return n


class AppendWriter:
    """Append-only JSONL writer for long jobs: each record is one flushed, fsynced line.

    On open it truncates a torn last line left by a killed process (no trailing newline), so a
    resumed run never glues a new record onto half of an old one.
    """

    def __init__(self, path: str | Path, *, fsync: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_torn_tail(self.path)
        self._f = open(self.path, "a", encoding="utf-8")
        self._fsync = fsync

    def write(self, record: Record | dict[str, Any]) -> None:
        self._f.write(dumps(record) + "\n")
        self._f.flush()
        if self._fsync:
            os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> AppendWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _drop_torn_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        # Walk back to the last newline and cut everything after it.
        pos = size - 1
        chunk = 4096
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            buf = f.read(pos - start)
            idx = buf.rfind(b"\n")
            if idx >= 0:
                f.truncate(start + idx + 1)
                return
            pos = start
        f.truncate(0)


def done_keys(path: str | Path, key_fields: tuple[str, ...] = ("id", "sample")) -> set[tuple]:
    """Keys of the complete records already in an append-only file (for resuming)."""
    path = Path(path)
    keys: set[tuple] = set()
    if not path.exists():
        return keys
    for _, text, err in iter_lines(path):
        if err is not None or text is None:
            continue
        try:
            d = loads(text)
        except RecordError:
            continue  # a torn line from a killed run; AppendWriter drops it on open
        if isinstance(d, dict) and all(k in d for k in key_fields):
            keys.add(tuple(d[k] for k in key_fields))
    return keys
