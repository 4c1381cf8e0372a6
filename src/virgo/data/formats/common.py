"""Pieces every dataset format shares: response -> record, image paths, ids, JSON arrays with line numbers."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from virgo.records import LongThoughtExample, ReadResult, RecordError, SFTExample
from virgo.records.jsonl import JSON_ERRORS, json_error, loads
from virgo.records.strictjson import STRICT_DECODER, find_problem
from virgo.thought import Status, parse_response, split_response

Example = LongThoughtExample | SFTExample

# Record fields a format derives from its own layout (a chat turn, combined_text): a row may not also carry them.
DERIVED = ("question", "thought", "solution", "response")
# The record kinds, as the ``kind`` column (hf) or key (llamafactory, still rows) names them.
KINDS: dict[str, type[Example]] = {"long_thought": LongThoughtExample, "sft": SFTExample}


class ResponseRows:
    """Base of the row parsers (``from_dict``, as ``read_records`` wants) of formats holding a rendered response."""

    def __init__(self, normalize: bool = False):
        self.normalize = normalize  # see example_from_response

    def from_dict(self, data: Any, *, base_dir: Path | None = None) -> Example:
        if not isinstance(data, dict):
            raise RecordError(f"expected a JSON object, got {type(data).__name__}")
        return self.parse(data, base_dir)

    def parse(self, data: dict[str, Any], base_dir: Path | None) -> Example:
        raise NotImplementedError


def example_from_response(fields: dict[str, Any], question: Any, response: Any, *, base_dir: Path | None,
                          normalize: bool, question_field: str, response_field: str) -> Example:
    """A record from a question and a rendered response, plus the row's other fields (id, images, domain, ...).

    A response in ``render_response``'s exact layout becomes a LongThoughtExample with exactly the sections it
    was rendered from (``split_response``, whitespace included); anything else stays an SFTExample holding the
    exact text, so a round trip through this format never changes a training target. A row with
    ``"kind": "sft"`` (written for an SFTExample whose response happens to be in that layout) stays an
    SFTExample. ``normalize`` accepts every complete response as a long thought, trimming the whitespace
    around its sections (``parse_response``).
    """
    for name, value in ((question_field, question), (response_field, response)):
        if not isinstance(value, str):
            raise RecordError(f"expected a string, got {type(value).__name__}", field=name)
    clash = [k for k in DERIVED if k in fields]
    if clash:
        raise RecordError(f"conflicts with the {clash[0]} taken from {question_field}/{response_field}",
                          field=clash[0])
    data = dict(fields)
    data["question"] = question
    if "id" not in data:
        data["id"] = content_id(question, response)
    # Only virgo's own value is read as the record kind; any other "kind" is the row's extra field.
    sft = data.get("kind") == "sft"
    if sft:
        del data["kind"]
    sections = None
    if normalize and not sft:
        p = parse_response(response)
        sections = (p.thought, p.solution) if p.status is Status.COMPLETE else None
    elif not sft:
        sections = split_response(response)
    if sections is not None:
        data["thought"], data["solution"] = sections
        cls: type[Example] = LongThoughtExample
    else:
        data["response"] = response
        cls = SFTExample
    try:
        return cls.from_dict(data, base_dir=base_dir)
    except RecordError as e:
        # Name the field of this format, not the record's internal one.
        field = {"question": question_field, "thought": f"{response_field} (thought)",
                 "solution": f"{response_field} (solution)", "response": response_field}.get(e.field, e.field)
        raise RecordError(e.message, field=field) from None


def content_id(question: str, response: str) -> str:
    """A stable id for rows that have none: the same row always gets the same id, wherever it sits in the file."""
    h = hashlib.sha1(f"{question}\x00{response}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha1-{h[:12]}"


def optional_fields(rec: Example) -> dict[str, Any]:
    """id, answer, domain, source (the optional ones only when set) and the record's extras, for a row of a
    format that stores the rendered response; plus ``"kind": "sft"`` for an SFTExample whose response is in
    ``render_response``'s exact layout, which would otherwise read back as a LongThoughtExample."""
    out: dict[str, Any] = {"id": rec.id}
    for name in ("answer", "domain", "source"):
        value = getattr(rec, name, None)
        if value is not None:
            out[name] = value
    if isinstance(rec, SFTExample) and split_response(rec.response) is not None:
        out["kind"] = "sft"
    if "kind" in rec.extra and ("kind" in out or rec.extra["kind"] == "sft"):
        raise RecordError(f"record {rec.id!r}: an extra field named 'kind' clashes with virgo's record kind",
                          field="kind")
    for k, v in rec.extra.items():
        out.setdefault(k, v)
    return out


def portable_images(images: list[str], out_dir: Path) -> list[str]:
    """Image paths for a file written in ``out_dir``: relative when the image lies under it, else unchanged.

    Records hold absolute paths (resolved against the file they came from); writing paths under the output
    directory relative to it keeps a dataset folder movable, and every reader resolves them back.
    """
    out_dir = out_dir.resolve()
    result = []
    for p in images:
        if "://" in p or p.startswith("data:") or not os.path.isabs(p):
            result.append(p)
            continue
        try:
            result.append(Path(p).relative_to(out_dir).as_posix())
        except ValueError:
            result.append(p)
    return result


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def first_char(path: Path) -> str:
    """The first non-blank character of a file ('' when empty): '[' means a JSON array, '{' JSONL."""
    with open(path, "rb") as f:
        while chunk := f.read(4096):
            stripped = chunk.lstrip(b" \t\r\n\xef\xbb\xbf")
            if stripped:
                return chr(stripped[0])
    return ""


def first_row(path: Path) -> dict[str, Any] | None:
    """The first JSON object of a JSONL file or JSON array, for telling formats apart (None if unreadable)."""
    for _, _, data, err in (iter_json_array(path) if first_char(path) == "[" else _jsonl_items(path)):
        return data if err is None and isinstance(data, dict) else None
    return None


def _jsonl_items(path: Path) -> Iterator[tuple[int, str, Any, str | None]]:
    from virgo.records.jsonl import iter_lines

    for lineno, text, err in iter_lines(path):
        if err is not None or text is None:
            yield lineno, "", None, err
            continue
        try:
            yield lineno, text, loads(text), None
        except RecordError as e:
            yield lineno, text, None, e.message


_WS = " \t\r\n"


def iter_json_array(path: Path) -> Iterator[tuple[int, str, Any, str | None]]:
    """Items of a JSON array file as (line where the item starts, raw item text, value or None, error or None).

    Unlike ``json.load`` this says on which line each item sits, and one item with bytes that are not UTF-8
    is reported alone (the file is decoded with surrogate escapes; such an item is an error, the rest are
    fine), as is an item nested too deeply or holding a too-long integer (see ``JSON_ERRORS``). A syntax error
    ends the array: everything after it comes out as one last raw chunk.
    """
    text = path.read_bytes().decode("utf-8", errors="surrogateescape").lstrip("\ufeff")
    i, n = 0, len(text)

    def skip(j: int) -> int:
        while j < n and text[j] in _WS:
            j += 1
        return j

    def line_of(j: int) -> int:
        return text.count("\n", 0, j) + 1

    i = skip(i)
    if i >= n:
        return
    if text[i] != "[":
        yield line_of(i), text[i:], None, "expected a JSON array of objects ('[' ...)"
        return
    decoder = STRICT_DECODER  # as the JSONL reader: no NaN/Infinity, no duplicate keys
    i = skip(i + 1)
    if i < n and text[i] == "]":
        return
    while i < n:
        try:
            value, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as e:
            yield e.lineno, text[i:].rstrip(), None, json_error(e)
            return
        except JSON_ERRORS as e:
            # Well-formed but too deep, or an integer too long: the item's end can still be found, so it is
            # reported alone and the items after it are read.
            end = _value_end(text, i)
            yield line_of(i), text[i:end], None, json_error(e)
        else:
            raw = text[i:end]
            bad = next((k for k, ch in enumerate(raw) if "\udc80" <= ch <= "\udcff"), None)
            problem = find_problem(value) if bad is None else None  # lone surrogates, nesting too deep
            if bad is not None:
                byte = raw[bad].encode("utf-8", "surrogateescape")
                yield line_of(i + bad), raw, None, f"not valid UTF-8 (byte {byte!r})"
            elif problem is not None:
                yield line_of(i), raw, None, problem.format()
            else:
                yield line_of(i), raw, value, None
        j = skip(end)
        if j < n and text[j] == ",":
            i = skip(j + 1)
            continue
        if j < n and text[j] == "]":
            if skip(j + 1) < n:
                yield line_of(skip(j + 1)), text[skip(j + 1):], None, "unexpected text after the JSON array"
            return
        if j >= n:
            break  # the file ends after an item: the array is not closed
        yield line_of(j), text[j:].rstrip(), None, "expected ',' or ']' after an array item"
        return
    yield line_of(n), "", None, "the JSON array is not closed (missing ']')"


# A JSON string (escapes included) or one structural character: all ``_value_end`` has to look at.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]', re.DOTALL)


def _value_end(text: str, start: int) -> int:
    """Where the JSON value starting at ``start`` ends, found by counting brackets (no recursion, so any depth).

    Only for values ``json`` could not build (too deep, integer too long): the text around them is valid.
    """
    depth = 0
    for m in _TOKEN.finditer(text, start):
        ch = m.group()
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            if depth == 0:
                return m.start()  # the enclosing array closes: the value was a scalar
            depth -= 1
            if depth == 0:
                return m.end()
        elif ch == "," and depth == 0:
            return m.start()
    return len(text)


def collect(items: Iterable[tuple[int, str, Any, str | None]], parser: Any, path: Path,
            base_dir: Path | None) -> ReadResult:
    """Parse located items with ``parser.from_dict`` into a ReadResult (the JSONL reader's contract)."""
    result = ReadResult()
    for line, raw, data, err in items:
        try:
            if err is not None:
                raise RecordError(err)
            result.records.append(parser.from_dict(data, base_dir=base_dir))
            result.lines.append(line)
        except RecordError as e:
            result.errors.append(e.located(path, line))
            result.raw_rejects.append((line, raw))
    return result
