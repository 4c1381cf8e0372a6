"""``virgo data validate``: one clear error line per bad record; good records kept, bad ones set aside raw.

A record is bad when its line is not UTF-8 or not JSON, a field is missing or has the wrong type, a required
text is empty (id, question, thought, solution), a marker of the thought format sits inside a thought, solution
or question, a generic response has markers but is not a complete long thought (truncated, malformed, ...), its
id repeats an earlier record's, its record type cannot be told, or an image is missing, remote, or does not
decode (PIL ``verify`` then ``load``). Each bad record gets exactly one error -- the first problem found --
as ``file:line: field 'name': what is wrong``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from virgo.data.formats import Format, resolve_format
from virgo.data.formats import virgo as virgo_format
from virgo.data.formats.common import first_char, iter_json_array
from virgo.records import Generation, Grade, LongThoughtExample, Problem, Record, RecordError, SFTExample
from virgo.records.base import json_kind
from virgo.records.jsonl import iter_raw_lines
from virgo.records.paths import is_remote, path_problem, show
from virgo.thought import MARKERS, Status, parse_response

TYPES: dict[str, Any] = {"example": virgo_format.ExampleRows, "problem": Problem, "generation": Generation,
                         "grade": Grade}


def guess_type(data: dict[str, Any]) -> str | None:
    """The record type a row's fields say it is (checked in this order), or None."""
    if "verdict" in data:
        return "grade"
    if "finish_reason" in data:
        return "generation"
    if data.keys() & {"thought", "solution", "response"}:
        return "example"
    if "answer" in data and "question" in data:
        return "problem"
    return None


class AutoRows:
    """Any virgo record, its type told apart by its fields (see ``guess_type``)."""

    @staticmethod
    def from_dict(data: Any, *, base_dir: Any = None) -> Record:
        if not isinstance(data, dict):
            raise RecordError(f"expected a JSON object, got {json_kind(data)}")
        kind = guess_type(data)
        if kind is None:
            raise RecordError("unknown record type: expected an example (thought + solution, or response), a "
                              "problem (question + answer), a generation (text + finish_reason) or a grade "
                              "(verdict); pass --type to say which")
        return TYPES[kind].from_dict(data, base_dir=base_dir)


# ------------------------------------------------------------------------------------------------ semantic checks

def image_error(path: str) -> str | None:
    """Why an image cannot be used for training, or None when it exists and decodes.

    The path checks (missing, directory, symlink loop, unreadable) are the reader's (``path_problem``).
    """
    from PIL import Image

    if is_remote(path):
        return f"not a local file ({show(path[:60])}): images must be files on disk"
    problem = path_problem(path)
    if problem:
        return problem
    try:
        with Image.open(path) as im:
            im.verify()  # structure and checksums, without decoding pixels
        with Image.open(path) as im:
            im.load()  # the pixels (verify misses truncated data)
    except Exception as e:  # noqa: BLE001 -- PIL raises many types for bad files: OSError, SyntaxError, ...
        return f"cannot decode image {show(path)}: {type(e).__name__}: {' '.join(str(e).split())}"
    return None


def content_error(rec: Record) -> RecordError | None:
    """Thought-format problems inside an example's texts."""
    texts: list[tuple[str, str]] = [("question", getattr(rec, "question", "") or "")]
    if isinstance(rec, LongThoughtExample):
        texts += [("thought", rec.thought), ("solution", rec.solution)]
    for name, text in texts:
        marker = next((m for m in MARKERS if m in text), None)
        if marker:
            return RecordError(f"contains the marker {marker}", field=name)
    if isinstance(rec, SFTExample):
        status = parse_response(rec.response).status
        if status not in (Status.COMPLETE, Status.PLAIN):
            return RecordError(f"has thought markers but is not a complete long thought ({status.value})",
                               field="response")
    return None


def _key(rec: Record) -> tuple:
    # Generations and grades repeat an id once per sample; everything else has one record per id. Records of
    # different types may share an id (a problem and its generations).
    if isinstance(rec, (Generation, Grade)):
        return (type(rec).__name__, *rec.key)
    return ("example" if isinstance(rec, (LongThoughtExample, SFTExample)) else type(rec).__name__, rec.id)


@dataclass
class Validation:
    path: Path
    format: str
    records: list[Record] = field(default_factory=list)  # the good ones, in file order
    errors: list[RecordError] = field(default_factory=list)  # one per bad record, in file order

    out: Path | None = None  # where the good records were written (validate_and_write)
    rejects: Path | None = None  # where the bad ones were set aside

    @property
    def n_bad(self) -> int:
        return len(self.errors)

    def lines(self) -> list[str]:
        """One ``file:line: field 'name': problem`` line per bad record, in file order."""
        return [e.format() for e in self.errors]

    def summary(self) -> str:
        total = len(self.records) + self.n_bad
        return (f"{self.path}: {total} record(s): {len(self.records)} good, {self.n_bad} bad"
                + (f"; good -> {self.out}" if self.out else "")
                + (f"; bad -> {self.rejects}" if self.rejects and self.n_bad else ""))


def validate_file(path: str | Path, *, fmt: str | None = None, record_type: str = "auto",
                  check_images: bool = True, progress: bool = False) -> Validation:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    f = resolve_format(path, fmt)
    if record_type != "auto" and record_type not in TYPES:
        raise ValueError(f"unknown record type {record_type!r}; one of auto, {', '.join(TYPES)}")
    if f.name == "virgo":
        parser = AutoRows if record_type == "auto" else TYPES[record_type]
        result = virgo_format.read(path, parser=parser)
    elif record_type in ("auto", "example"):
        result = f.read(path)
    else:
        raise ValueError(f"--type {record_type} needs virgo JSONL; {f.name} files hold examples")

    errors = list(result.errors)
    good: list[Record] = []
    seen: dict[tuple, int] = {}
    image_cache: dict[str, str | None] = {}
    items: Iterable = zip(result.lines, result.records)
    if progress:
        from tqdm import tqdm

        items = tqdm(items, total=len(result.records), desc="validating", unit="rec", disable=None)
    for line, rec in items:
        err = content_error(rec)
        key = _key(rec)
        if err is None and key in seen:
            what = f"id {key[1]!r}" + (f", sample {key[2]}" if len(key) > 2 else "")
            err = RecordError(f"duplicate of line {seen[key]} ({what})", field="id")
        if err is None and check_images:
            for where, p in rec.image_paths():
                if p not in image_cache:
                    image_cache[p] = image_error(p)
                if image_cache[p]:
                    err = RecordError(image_cache[p], field=where)
                    break
        if err is not None:
            errors.append(err.located(path, line))
            continue
        seen.setdefault(key, line)
        good.append(rec)
    errors.sort(key=lambda e: e.line or 0)
    return Validation(path, f.name, good, errors)


def validate_and_write(path: str | Path, *, fmt: str | None = None, record_type: str = "auto",
                       check_images: bool = True, out: str | Path | None = None, to: str | None = None,
                       rejects: str | Path | None = None, progress: bool = False) -> Validation:
    """``virgo data validate``: check every record, write the good ones to ``out`` (format ``to``, default the
    input's or what the name says) and the bad ones, byte for byte, to ``rejects``.

    Every good record can be written: the reader refuses what a writer could not encode (NaN, lone
    surrogates), so ``out`` never fails on a record that passed. The caller prints ``lines()`` and
    ``summary()`` and exits 1 when ``n_bad``.
    """
    from virgo.data.formats import output_format

    v = validate_file(path, fmt=fmt, record_type=record_type, check_images=check_images, progress=progress)
    fin = resolve_format(v.path, fmt)
    if out is not None:
        v.out = Path(out)
        output_format(v.out, to, fin.name).write(v.out, v.records)
    if rejects is not None:
        v.rejects = Path(rejects)
        write_rejects(v.rejects, v.path, fin, v.errors)
    return v


# ------------------------------------------------------------------------------------------------ raw rejects

def raw_items(path: Path, f: Format, lines: set[int]) -> dict[int, bytes]:
    """The original bytes of the items at ``lines`` (JSONL lines, JSON array items, or rows as JSON)."""
    out: dict[int, bytes] = {}
    if f.name in ("hf", "parquet"):
        from virgo.data.formats.hf import load_rows

        _, rows = load_rows(path, f.name)
        return {i: json.dumps(rows[i - 1], ensure_ascii=False, default=str).encode() for i in lines}
    if first_char(path) == "[":
        for line, raw, _, _ in iter_json_array(path):
            if line in lines:
                out[line] = raw.encode("utf-8", "surrogateescape")
        return out
    for lineno, raw in iter_raw_lines(path):  # the reader's own line numbering (LF, CRLF, lone CR)
        if lineno in lines:
            out[lineno] = raw
    return out


def write_rejects(path: Path, source: Path, f: Format, errors: Sequence[RecordError]) -> int:
    """Bad items exactly as they were: JSONL lines for JSONL input, a JSON array for a JSON array."""
    lines = sorted({e.line for e in errors if e.line is not None})
    raw = raw_items(source, f, set(lines))
    chunks = [raw[k] for k in lines if k in raw]
    path.parent.mkdir(parents=True, exist_ok=True)
    if f.name not in ("hf", "parquet") and first_char(source) == "[":
        body = b"[\n" + b",\n".join(chunks) + b"\n]\n" if chunks else b"[]\n"
    else:
        body = b"".join(c + b"\n" for c in chunks)
    path.write_bytes(body)
    return len(chunks)
