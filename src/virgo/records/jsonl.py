"""JSONL persistence for records: the one reader every stage uses, and append-only durable writing.

Reading never stops at a bad record and never loses a good one. Lines end at LF, CRLF or a lone CR (a file
saved on any system); a UTF-8 byte-order mark at the start of a line is dropped (an editor's BOM on the first
line, or one left inside files joined with ``cat``: U+FEFF is never valid JSON, so nothing is lost). Each
line is decoded as UTF-8 and parsed as strict JSON (``virgo.records.strictjson``: no NaN or Infinity, no lone
surrogates, no duplicate keys, bounded nesting), typed by the record class, and, for records read with their
images, every local image path is checked (missing, a directory, a symlink loop, unreadable). Whatever is
wrong becomes one ``file:line: field 'name': problem`` error for that line; the rest are read.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from virgo.records.base import Record, RecordError
from virgo.records.strictjson import JSON_ERRORS, dumps, encode, json_error, loads, parse

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["JSON_ERRORS", "AppendWriter", "NoUsableRecords", "ReadResult", "done_keys", "dumps", "iter_lines",
           "iter_raw_lines", "json_error", "loads", "read_all", "read_records", "write_records"]

T = TypeVar("T", bound=Record)

BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class NoUsableRecords(RecordError):
    """A file gave no good record at all: every line was bad, or there was none. One line, for a CLI to print
    before it exits non-zero."""


@dataclass
class ReadResult:
    """Good records and located errors from one file: bad lines never hide good ones."""

    records: list = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    raw_rejects: list[tuple[int, str]] = field(default_factory=list)  # (line number, raw line text)
    lines: list[int] = field(default_factory=list)  # line number of each good record, parallel to ``records``
    # Lines read with ``replace_invalid_utf8``: (line number, what was wrong) of good records whose bytes were
    # not valid UTF-8 (or held lone surrogates) and were decoded with U+FFFD replacement characters.
    replaced: list[tuple[int, str]] = field(default_factory=list)
    path: Path | None = None

    def require_usable(self, path: str | Path | None = None, *, allow_empty: bool = False) -> ReadResult:
        """Self when at least one record is good; else raise NoUsableRecords with a one-line summary.

        ``allow_empty``: a file with no lines at all is fine (a job's output before its first record); only a
        file whose every line is bad is refused.
        """
        if self.records or (allow_empty and not self.errors):
            return self
        where = path if path is not None else self.path
        if not self.errors:
            raise NoUsableRecords("no records (the file is empty)", path=where)
        first = self.errors[0].format(with_path=False)
        raise NoUsableRecords(f"no usable records: all {len(self.errors)} record(s) are bad (first: {first})",
                              path=where)

    def warn_skipped(self, what: str = "") -> ReadResult:
        """Print one ``warning: skipped a bad record: file:line: ...`` line per bad record to stderr; self."""
        for err in self.errors:
            print(f"warning: skipped a bad {what + ' ' if what else ''}record: {err}", file=sys.stderr)
        return self


def iter_raw_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes without the line end) of every line; LF, CRLF and a lone CR each end a line.

    Latin-1 maps every byte to one character, so Python's universal-newline reader splits the bytes without
    decoding them (and handles a CRLF split across its read buffer); encoding back gives the exact bytes.
    A CR or LF byte never occurs inside a UTF-8 multi-byte sequence, nor unescaped inside a JSON string.
    """
    with open(path, encoding="latin-1", newline=None) as f:
        for lineno, line in enumerate(f, start=1):
            yield lineno, line.rstrip("\n").encode("latin-1")


def iter_lines(path: str | Path, *, replace_invalid: bool = False) -> Iterator[tuple[int, str | None, str | None]]:
    """Yield (line number, decoded text or None, UTF-8 problem or None); blank lines skipped.

    A line that is not valid UTF-8 gives text None, or with ``replace_invalid`` its text with U+FFFD for
    each bad byte; the problem is reported either way.
    """
    for lineno, raw in iter_raw_lines(path):
        raw = raw.removeprefix(BOM)
        if not raw.strip():
            continue
        try:
            yield lineno, raw.decode("utf-8"), None
        except UnicodeDecodeError as e:
            if lineno == 1 and raw.startswith(_UTF16_BOMS):
                problem = ("not valid UTF-8: the file is UTF-16 (it starts with a UTF-16 byte-order mark); "
                           "save it as UTF-8")
            else:
                problem = f"not valid UTF-8 (byte {e.start}: {raw[e.start:e.start + 1]!r})"
            yield lineno, raw.decode("utf-8", errors="replace") if replace_invalid else None, problem


def _read_one(cls: Any, text: str | None, decode_error: str | None, base: Path | None, check_images: bool,
              replace: bool) -> tuple[Record, str | None]:
    """One line's record and what was replaced in it (or None); RecordError for whatever is wrong."""
    if text is None:
        raise RecordError(decode_error or "not valid UTF-8")
    data, replaced = parse(text, replace_surrogates=replace)
    try:
        rec = cls.from_dict(data, base_dir=base)
    except (RecordError, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 -- a parser bug must cost one record, not the run; the type names the bug
        raise RecordError(f"could not be read ({type(e).__name__}: {' '.join(str(e).split())})") from None
    if check_images:
        rec.check_images()
    return rec, decode_error or replaced


def read_records(path: str | Path, cls: type[T], *, strict: bool = True, resolve_images: bool = True,
                 check_images: bool | None = None, replace_invalid_utf8: bool = False) -> list[T] | ReadResult:
    """Read a JSONL file of ``cls`` records (anything with a ``from_dict(data, base_dir=...)`` will do).

    strict=True raises the first RecordError (with file and line); strict=False returns a ReadResult with
    every good record and one error per bad line (``ReadResult.require_usable`` raises when none is good).
    ``resolve_images`` makes image paths absolute, relative to the file; ``check_images`` (default: the same
    as ``resolve_images``) makes a record whose local image is missing, a directory, a symlink loop or
    unreadable a bad record; pass False where images need not be present (format conversion, statistics).
    A line that is not valid UTF-8 is a bad line, unless ``replace_invalid_utf8``: then it is decoded with
    U+FFFD for each bad byte (and each lone surrogate), read like any other line, and listed in
    ``ReadResult.replaced`` when it makes a good record (for model output, which must be graded whatever
    bytes it holds, rather than dropped).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, not a JSONL file")
    base = path.parent if resolve_images else None
    check = resolve_images if check_images is None else check_images
    result = ReadResult(path=path)
    for lineno, text, decode_error in iter_lines(path, replace_invalid=replace_invalid_utf8):
        try:
            rec, replaced = _read_one(cls, text, decode_error, base, check, replace_invalid_utf8)
        except RecordError as e:
            err = e.located(path, lineno)
            if strict:
                raise err from None
            result.errors.append(err)
            raw = text if text is not None else "<undecodable line>"
            result.raw_rejects.append((lineno, raw))
            continue
        result.records.append(rec)
        result.lines.append(lineno)
        if replaced is not None:
            result.replaced.append((lineno, replaced))
    return result.records if strict else result


def read_all(paths: Iterable[str | Path], cls: type[T], what: str) -> list[T]:
    """Every record of every file, in order; any bad line anywhere is one error naming file, line and field for
    each (the first five shown), so a training run never starts on part of its data. ``what`` names the records
    in messages ("training", "problem")."""
    records: list[T] = []
    errors: list[RecordError] = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path}: {what} file not found")
        result = read_records(path, cls, strict=False)
        records += result.records
        errors += result.errors
    if errors:
        shown = "\n  ".join(e.format() for e in errors[:5])
        more = f"\n  ... and {len(errors) - 5} more" if len(errors) > 5 else ""
        raise RecordError(f"{len(errors)} bad {what} record(s):\n  {shown}{more}")
    return records


def write_records(path: str | Path, records: Iterable[Record | dict[str, Any]]) -> int:
    """Write records to a fresh file atomically (temp file + rename); returns the count.

    A record that cannot be written as strict JSON raises RecordError before the file is replaced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    try:
        with open(tmp, "wb") as f:
            for r in records:
                f.write(encode(r))
                n += 1
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return n


class AppendWriter:
    """Append-only JSONL writer for long jobs: each record is one flushed, fsynced line.

    On open it truncates a torn last line left by a killed process (no line end), so a resumed run never
    glues a new record onto half of an old one. A record that cannot be written as strict JSON raises
    RecordError and writes nothing.
    """

    def __init__(self, path: str | Path, *, fsync: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_torn_tail(self.path)
        self._f = open(self.path, "ab")  # noqa: SIM115 -- held open for the job's life; closed by close()
        self._fsync = fsync

    def write(self, record: Record | dict[str, Any]) -> None:
        self._f.write(encode(record))
        self._f.flush()
        if self._fsync:
            os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _drop_torn_tail(path: Path) -> None:
    # A line ends at LF or a lone CR (as the reader sees it): cut whatever follows the last one.
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(size - 1)
        if f.read(1) in (b"\n", b"\r"):
            return
        pos = size - 1
        chunk = 4096
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            buf = f.read(pos - start)
            idx = max(buf.rfind(b"\n"), buf.rfind(b"\r"))
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
            try:
                keys.add(tuple(d[k] for k in key_fields))
            except TypeError:  # an unhashable key value (a list): not a record this file resumes
                continue
    return keys
