"""Property-based fuzzing of the one JSONL reader (hypothesis): thousands of generated files -- random bytes, good
records mutated byte by byte, NaN / Infinity / huge integers / deep nesting / lone surrogates / duplicate keys
injected, every line ending mixed, BOMs -- and for each:

* reading never raises: every non-blank line gives exactly one good record or one located, one-line error, and
  no error is the reader's catch-all for a parser bug;
* every good record is kept, on its own line number, equal to what was written;
* whatever the reader accepts, the writer writes back and the reader reads again unchanged.

Bounded for CI: 2,000 + 600 examples (VIRGO_FUZZ_SCALE multiplies them for a long local run), derandomized so
every run checks the same inputs, and a deadline per example.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from virgo.records import Generation, Problem, read_records, write_records
from virgo.records.jsonl import iter_lines

SCALE = float(os.environ.get("VIRGO_FUZZ_SCALE", "1"))  # e.g. 20 for a long local run


def fuzz(examples: int) -> settings:
    return settings(max_examples=int(examples * SCALE), deadline=timedelta(seconds=5), derandomize=True,
                    database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


ENDINGS = [b"\n", b"\r\n", b"\r"]
BOM = b"\xef\xbb\xbf"


def _has_text(s: str) -> bool:  # named functions, not lambdas: hypothesis describes a lambda by parsing its source
    return bool(s.strip())


def _extra_key(k: str) -> str:
    return "x_" + k


def _leaf_container(inner):
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)


texts = st.text(max_size=30)
nonblank = st.text(min_size=1, max_size=30).filter(_has_text)

# JSON values without NaN, infinities or surrogates (hypothesis' text() leaves surrogates out): what a good
# record may hold in its free-form fields.
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | texts
json_values = st.recursive(json_scalars, _leaf_container, max_leaves=5)


@st.composite
def good_records(draw, cls: type) -> dict:
    if cls is Problem:
        data = {"id": draw(nonblank), "question": draw(nonblank), "answer": draw(texts),
                "meta": draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))}
        if draw(st.booleans()):
            data["choices"] = draw(st.lists(texts, max_size=4))
    else:
        data = {"id": draw(texts), "sample": draw(st.integers(min_value=0)), "text": draw(st.text()),
                "finish_reason": draw(st.sampled_from(["stop", "length"])),
                "settings": draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))}
    for key, value in draw(st.dictionaries(st.text(max_size=6).map(_extra_key), json_values, max_size=2)).items():
        data[key] = value  # unknown fields, kept in ``extra``
    return data


def _encode(data: dict, ascii_only: bool) -> bytes:
    return json.dumps(data, ensure_ascii=ascii_only).encode("utf-8")


def _no_line_end(b: bytes) -> bytes:
    return b.replace(b"\r", b" ").replace(b"\n", b" ")


@st.composite
def bad_lines(draw, good: bytes) -> bytes:
    """A line that is probably bad: random bytes, or ``good`` mutated or with something hostile injected."""
    kind = draw(st.sampled_from(["bytes", "delete", "insert", "replace", "truncate", "inject", "deep", "bigint"]))
    if kind == "bytes":
        return _no_line_end(draw(st.binary(max_size=200)))
    if kind == "deep":
        k = draw(st.integers(min_value=150, max_value=20_000))
        return good[:-1] + b', "deep": ' + b"[" * k + b"]" * draw(st.sampled_from([0, k])) + b"}"
    if kind == "bigint":
        digits = draw(st.integers(min_value=4000, max_value=6000))
        return good[:-1] + b', "big": ' + b"7" * digits + b"}"
    i = draw(st.integers(min_value=0, max_value=max(0, len(good) - 1)))
    if kind == "delete":
        return good[:i] + good[i + 1:]
    if kind == "insert":
        return good[:i] + _no_line_end(draw(st.binary(min_size=1, max_size=4))) + good[i:]
    if kind == "replace":
        return good[:i] + _no_line_end(draw(st.binary(min_size=1, max_size=1))) + good[i + 1:]
    if kind == "truncate":
        return good[:i]
    hostile = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b'"\\ud800"', b'"\\udfff x"',
                                    b'"a\\ud83d"', b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\t"]))
    return good[:-1] + b', "hostile": ' + hostile + b"}"


def _check_read(path, cls) -> object:
    res = read_records(path, cls, strict=False, replace_invalid_utf8=cls is Generation)
    n_lines = sum(1 for _ in iter_lines(path))
    assert len(res.records) + len(res.errors) == n_lines  # one outcome per non-blank line
    assert sorted(res.lines + [e.line for e in res.errors]) == [n for n, _, _ in iter_lines(path)]
    for e in res.errors:
        text = e.format()
        assert e.path == str(path) and e.line is not None and "\n" not in text and "\r" not in text
        assert "could not be read" not in e.message, text  # the catch-all: a parser bug, not a bad record
    # Whatever was accepted is written back and read again unchanged.
    out = path.with_name("rewritten.jsonl")
    write_records(out, res.records)
    again = read_records(out, cls)
    assert [r.to_dict() for r in again] == [r.to_dict() for r in res.records]
    return res


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@fuzz(2000)
@given(content=st.binary(max_size=600) | st.lists(st.sampled_from(
    [b"{", b"}", b"[", b"]", b'"', b"\\", b"\\u", b"d800", b"NaN", b"\r", b"\n", b"\r\n", BOM, b"\xff", b":", b",",
     b'"id"', b'"question"', b'"answer"', b'"x"', b"1", b"-", b"e999", b" ", b"null"]), max_size=80).map(b"".join))
def test_any_bytes_never_crash_the_reader(fuzz_dir, content):
    path = fuzz_dir / "any.jsonl"
    path.write_bytes(content)
    for cls in (Problem, Generation):
        _check_read(path, cls)


@fuzz(600)
@given(data=st.data())
def test_good_records_survive_any_neighbours_and_line_endings(fuzz_dir, data):
    cls = data.draw(st.sampled_from([Problem, Generation]))
    items = data.draw(st.lists(good_records(cls), min_size=1, max_size=6))
    lines: list[tuple[bytes, dict | None]] = []
    for record in items:
        line = _encode(record, data.draw(st.booleans()))
        for _ in range(data.draw(st.integers(min_value=0, max_value=2))):
            lines.append((data.draw(bad_lines(line)), None))
        if data.draw(st.booleans()):
            lines.append((data.draw(st.sampled_from([b"", b"   ", b"\t", BOM])), None))  # blank lines
        lines.append((line, record))
    body, good_at, ending = b"", {}, b""
    for lineno, (line, record) in enumerate(lines, start=1):
        # A lone CR then an empty line ended by LF is a CRLF: one line end, not two (so is every reader's view).
        choices = ENDINGS[1:] if ending == b"\r" and not line else ENDINGS
        ending = data.draw(st.sampled_from(choices))
        body += line + ending
        if record is not None:
            good_at[lineno] = record
    if data.draw(st.booleans()):
        body = BOM + body
    if data.draw(st.booleans()):
        body = body.rstrip(b"\r\n")  # no line end after the last record
    path = fuzz_dir / "mixed.jsonl"
    path.write_bytes(body)

    res = _check_read(path, cls)
    by_line = dict(zip(res.lines, res.records))
    for n, record in good_at.items():
        assert n in by_line, (n, [str(e) for e in res.errors if e.line == n])
        assert by_line[n].to_dict() == cls.from_dict(record).to_dict()  # kept exactly, unknown fields included
