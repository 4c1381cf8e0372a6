"""Strict JSON for records: what the reader accepts is exactly what the writers can write back.

``json`` alone is lenient in ways that let a bad record pass and fail later: it reads ``NaN`` and
``Infinity`` (not JSON) and ``1e999`` (an infinite float), keeps the last of two equal keys, decodes a lone
``"\\ud800"`` escape into a string no UTF-8 writer can encode, and builds values nested so deeply that
``json.dumps`` (called from a deeper stack) overflows Python's recursion limit. Here each of those is a
``RecordError`` naming the field where it can, raised on read and again on write, so a record either
round-trips or is reported alone.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

from virgo.records.base import Record, RecordError

# Deeper than any real record, far below the recursion limit: a value read here can be written from any stack.
MAX_DEPTH = 200

# What ``json`` raises on hostile text besides syntax errors (JSONDecodeError is a ValueError): RecursionError
# for nesting deeper than Python's recursion limit (a line of 200,000 "["), and ValueError for an integer
# literal longer than ``sys.get_int_max_str_digits()`` (4,300 digits by default).
JSON_ERRORS = (ValueError, RecursionError)

# A \uD800-\uDFFF escape: the only way a lone surrogate gets into text decoded from valid UTF-8.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Strict(ValueError):
    """A literal ``json`` accepts but JSON does not (already worded for the user)."""


def json_error(e: ValueError | RecursionError) -> str:
    """One wording for every way ``json`` rejects a text (json's own syntax messages end in 'at' before a
    position; the other two name Python internals rather than what is wrong with the data)."""
    if isinstance(e, json.JSONDecodeError):
        return f"invalid JSON: {e.msg} (column {e.colno})"
    if isinstance(e, _Strict):
        return f"invalid JSON: {e}"
    if isinstance(e, RecursionError):
        return "invalid JSON: nested too deeply (arrays or objects deeper than Python's recursion limit)"
    if "integer string conversion" in str(e):
        return f"invalid JSON: an integer literal longer than {sys.get_int_max_str_digits()} digits"
    return f"invalid JSON: {e}"


def _constant(name: str) -> Any:
    raise _Strict(f"{name} is not a finite number (JSON has no NaN or Infinity)")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Strict(f"{text[:40]} is not a finite number (too large for a 64-bit float)")
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _Strict(f"the key {dup!r} appears twice in one object")
    return obj


STRICT_DECODER = json.JSONDecoder(parse_float=_float, parse_constant=_constant, object_pairs_hook=_object)


def field_name(parent: str, key: str | int) -> str:
    """``parent.key`` / ``parent[i]``; a key that would be ambiguous or span lines is written as a repr."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    shown = key if key and key.isprintable() and not any(c in key for c in ".[]'\"") else repr(key)
    return f"{parent}.{shown}" if parent else shown


def _surrogate(s: str) -> str | None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        return f"\\u{ord(s[e.start]):04x}"
    return None


def find_problem(value: Any, *, floats: bool = False, surrogates: bool = True) -> RecordError | None:
    """The first part of ``value`` (in document order) that cannot be written as strict UTF-8 JSON: nesting
    deeper than MAX_DEPTH, a lone surrogate in a string or key (unless ``surrogates`` is False), and with
    ``floats`` a NaN or infinity.

    Iterative, so it is safe on any depth.
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        v, where, depth = stack.pop()
        if isinstance(v, str):
            bad = _surrogate(v) if surrogates else None
            if bad:
                return RecordError(f"holds a lone surrogate {bad} (half of a UTF-16 pair, not a character)",
                                   field=where or None)
        elif isinstance(v, float):
            if floats and not math.isfinite(v):
                return RecordError(f"not a finite number ({v}); JSON has no NaN or Infinity", field=where or None)
        elif isinstance(v, (dict, list, tuple)):
            if depth >= MAX_DEPTH:
                return RecordError(f"invalid JSON: arrays or objects nested deeper than {MAX_DEPTH} levels",
                                   field=None)
            items = list(v.items()) if isinstance(v, dict) else list(enumerate(v))
            for k, child in reversed(items):
                if surrogates and isinstance(k, str) and _surrogate(k):
                    return RecordError(f"an object key holds a lone surrogate {_surrogate(k)}", field=where or None)
                stack.append((child, field_name(where, k), depth + 1))
    return None


def scrub_surrogates(s: str) -> str:
    """``s`` with every lone surrogate replaced by U+FFFD (for model output, which is kept whatever it holds)."""
    return _SURROGATE.sub("\ufffd", s)


def _scrub(v: Any) -> Any:
    # Only called on values find_problem has walked: depth <= MAX_DEPTH, so recursion is safe.
    if isinstance(v, str):
        return _SURROGATE.sub("\ufffd", v)
    if isinstance(v, dict):
        return {_SURROGATE.sub("\ufffd", k): _scrub(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_scrub(x) for x in v]
    return v


def parse(text: str, *, replace_surrogates: bool = False) -> tuple[Any, str | None]:
    """(value, what was replaced or None). Raises RecordError for anything that is not strict JSON.

    ``replace_surrogates`` turns lone surrogates into U+FFFD instead of failing (for model output, which must
    be kept whatever it holds); the second item then says what was replaced.
    """
    try:
        value = STRICT_DECODER.decode(text)
    except JSON_ERRORS as e:
        raise RecordError(json_error(e)) from None
    # A walk only when the text could hold a surrogate or be too deep: most records skip it.
    if not (_SURROGATE_ESCAPE.search(text) or text.count("[") + text.count("{") > MAX_DEPTH):
        return value, None
    problem = find_problem(value)
    if problem is None:
        return value, None
    if replace_surrogates and "surrogate" in problem.message:
        deeper = find_problem(value, surrogates=False)  # too deep as well: _scrub recurses, so never scrub it
        if deeper is not None:
            raise deeper
        return _scrub(value), problem.format()
    raise problem


def loads(text: str) -> Any:
    """Strict ``json.loads`` for untrusted text: whatever is wrong with it comes out as a RecordError."""
    return parse(text)[0]


def encode(record: Record | dict[str, Any]) -> bytes:
    """One record as a UTF-8 JSON line (newline included); RecordError, naming the field, if it cannot be."""
    data = record.to_dict() if isinstance(record, Record) else record
    try:
        return (json.dumps(data, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    except (ValueError, RecursionError) as e:  # NaN/inf, a lone surrogate (UnicodeEncodeError), too deep
        problem = find_problem(data, floats=True)
        raise (problem or RecordError(f"cannot be written as JSON: {e}")) from None


def dumps(record: Record | dict[str, Any]) -> str:
    """One record as strict JSON text (no newline)."""
    return encode(record)[:-1].decode("utf-8")
