"""The one JSONL reader: strict JSON, BOMs and every line ending, invalid UTF-8 and lone surrogates, image path
problems -- each bad record reported alone as ``file:line: field: problem``, every good record kept.

The first tests here are the defects issue 18 found (each failed before the reader was hardened).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from virgo.data.validate import validate_and_write
from virgo.records import (
    AppendWriter,
    Generation,
    NoUsableRecords,
    Problem,
    RecordError,
    done_keys,
    read_records,
    write_records,
)
from virgo.records.jsonl import dumps, iter_lines, loads


def _p(i: int, **kw) -> dict:
    return {"id": f"p{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i), **kw}


def _line(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def _validate(tmp_path, path, **kw):
    """What `virgo data validate PATH --type problem --out good.jsonl` does; returns (validation, error lines, out)."""
    v = validate_and_write(path, record_type="problem", out=tmp_path / "good.jsonl", **kw)
    lines = v.lines()
    assert all("\n" not in x and x.startswith(f"{path}:") for x in lines)
    return v, lines, v.out


# ----------------------------------------------------------------------------------------- the defects of issue 18

def test_symlink_loop_in_an_image_is_one_located_error_not_a_crash(tmp_path):
    """Before: Path.resolve raised RuntimeError("Symlink loop") out of the shared resolver, ending the run."""
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    os.symlink("loop_b.png", tmp_path / "loop_a.png")
    os.symlink("loop_a.png", tmp_path / "loop_b.png")
    f = tmp_path / "p.jsonl"
    f.write_bytes(b"\n".join([_line(_p(1, images=["ok.png"])), _line(_p(2, images=["loop_a.png"])),
                              _line(_p(3))]) + b"\n")
    res = read_records(f, Problem, strict=False)
    assert [p.id for p in res.records] == ["p1", "p3"]
    (err,) = res.errors
    assert str(err).startswith(f"{f}:2: field 'images[0]': symlink loop")
    v, errors, out = _validate(tmp_path, f)
    assert v.n_bad == 1 and errors[0].startswith(f"{f}:2: field 'images[0]': symlink loop")
    assert [p.id for p in read_records(out, Problem)] == ["p1", "p3"]


def test_lone_surrogate_is_a_located_error_and_out_is_still_written(tmp_path):
    """Before: "\\ud800" passed validation, then writing --out raised UnicodeEncodeError: exit 2, no error lines."""
    f = tmp_path / "p.jsonl"
    f.write_bytes(_line(_p(1)) + b"\n" + b'{"id": "p2", "question": "half a pair \\ud800 here", "answer": "4"}\n'
                  + b'{"id": "p3", "question": "q", "answer": "1", "meta": {"notes": ["ok", "\\udfff"]}}\n'
                  + _line(_p(4, question="a real pair \U0001F600 is fine")) + b"\n")
    res = read_records(f, Problem, strict=False)
    assert [p.id for p in res.records] == ["p1", "p4"]
    assert [(e.line, e.field) for e in res.errors] == [(2, "question"), (3, "meta.notes[1]")]
    assert "lone surrogate \\ud800" in res.errors[0].message
    _, errors, out = _validate(tmp_path, f)
    assert [e.split(": ")[0] for e in errors] == [f"{f}:2", f"{f}:3"]
    assert [p.id for p in read_records(out, Problem)] == ["p1", "p4"]
    assert read_records(out, Problem)[1].question == "a real pair \U0001F600 is fine"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
def test_non_finite_numbers_are_rejected(tmp_path, literal):
    """Before: a NaN literal passed and was written back out as non-standard JSON."""
    f = tmp_path / "p.jsonl"
    f.write_bytes(_line(_p(1)) + b"\n" + f'{{"id": "p2", "question": "q", "answer": "1", "meta": {{"x": {literal}}}}}'
                  .encode() + b"\n" + _line(_p(3, meta={"x": 1.5})) + b"\n")
    res = read_records(f, Problem, strict=False)
    assert [p.id for p in res.records] == ["p1", "p3"]
    (err,) = res.errors
    assert err.line == 2 and "invalid JSON" in err.message and "not a finite number" in err.message
    v, errors, out = _validate(tmp_path, f)
    assert len(errors) == 1 and v.summary().endswith("3 record(s): 2 good, 1 bad; good -> " + str(out))
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text


def test_a_byte_order_mark_on_the_first_line_is_not_a_bad_record(tmp_path):
    """Before: the first record of a file saved with a BOM was rejected ("Unexpected UTF-8 BOM")."""
    f = tmp_path / "p.jsonl"
    f.write_bytes(b"\xef\xbb\xbf" + _line(_p(1)) + b"\n" + _line(_p(2)) + b"\n")
    res = read_records(f, Problem, strict=False)
    assert [p.id for p in res.records] == ["p1", "p2"] and res.errors == []
    assert read_records(f, Problem)[0].id == "p1"
    # Files joined with `cat` keep each part's BOM: a BOM at the start of a later line is dropped too.
    g = tmp_path / "joined.jsonl"
    g.write_bytes(f.read_bytes() + b"\xef\xbb\xbf" + _line(_p(3)) + b"\n")
    assert [p.id for p in read_records(g, Problem)] == ["p1", "p2", "p3"]


@pytest.mark.parametrize("sep", [b"\r", b"\r\n", b"\n"], ids=["CR", "CRLF", "LF"])
def test_every_line_ending_separates_records(tmp_path, sep):
    """Before: lone-CR line endings merged two good records into one "Extra data" error."""
    f = tmp_path / "p.jsonl"
    f.write_bytes(sep.join([_line(_p(1)), _line(_p(2)), b'{"id": "p3", "question":', _line(_p(4))]) + sep)
    res = read_records(f, Problem, strict=False)
    assert [p.id for p in res.records] == ["p1", "p2", "p4"] and res.lines == [1, 2, 4]
    assert [(e.line, e.message.split(":")[0]) for e in res.errors] == [(3, "invalid JSON")]
    # validate's rejects file numbers lines the same way, and keeps the bad line's bytes.
    _, errors, _ = _validate(tmp_path, f, rejects=tmp_path / "rej.jsonl")
    assert [e.split(": ")[0] for e in errors] == [f"{f}:3"]
    assert (tmp_path / "rej.jsonl").read_bytes() == b'{"id": "p3", "question":\n'


def test_mixed_line_endings_in_one_file(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_bytes(_line(_p(1)) + b"\r\n" + _line(_p(2)) + b"\r" + _line(_p(3)) + b"\n\r\n\r" + _line(_p(4)))
    res = read_records(f, Problem, strict=False)
    assert [p.id for p in res.records] == ["p1", "p2", "p3", "p4"] and res.lines == [1, 2, 3, 6]


# ----------------------------------------------------------------------------------------- image path problems

def test_image_path_problems_are_reported_per_record(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    (tmp_path / "a_dir.png").mkdir()
    os.symlink("gone.png", tmp_path / "dangling.png")
    os.symlink("self.png", tmp_path / "self.png")
    rows = [_p(1, images=["ok.png"]), _p(2, images=["ok.png", "missing.png"]), _p(3, images=["a_dir.png"]),
            _p(4, images=["dangling.png"]), _p(5, images=["self.png"]), _p(6, images=["ok.png/inside.png"]),
            _p(7, images=["https://example.com/x.png"]), _p(8, images=["\x00nul.png"])]
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = read_records(f, Problem, strict=False)
    assert [p.id for p in res.records] == ["p1", "p7"]  # remote images are the backend's business
    got = {e.line: str(e) for e in res.errors}
    assert got[2].startswith(f"{f}:2: field 'images[1]': image not found: ")
    assert got[3].startswith(f"{f}:3: field 'images[0]': not a file (a directory): ")
    assert got[4].startswith(f"{f}:4: field 'images[0]': image not found: {tmp_path / 'gone.png'}")
    assert got[5].startswith(f"{f}:5: field 'images[0]': symlink loop: ")
    assert got[6].startswith(f"{f}:6: field 'images[0]': image not found (a parent is not a directory): ")
    assert got[8].startswith(f"{f}:8: field 'images[0]': not a usable path (it holds a NUL character)")
    # Without checking (format conversion, statistics), the paths are only resolved, never an error.
    unchecked = read_records(f, Problem, strict=False, check_images=False)
    assert len(unchecked.records) == len(rows) and unchecked.errors == []


_PERMISSION_PROBE = """
import json, os, pwd, sys
from virgo.records import Problem, read_records
import codecs; codecs.lookup("latin-1"), codecs.lookup("utf-8")  # load them while the stdlib is readable
if os.geteuid() == 0:  # drop to 'nobody' once Python and virgo are loaded (the interpreter lives under /root)
    nobody = pwd.getpwnam("nobody")
    os.setgroups([])
    os.setgid(nobody.pw_gid)
    os.setuid(nobody.pw_uid)
res = read_records(sys.argv[1], Problem, strict=False)
print(json.dumps({"ids": [p.id for p in res.records], "errors": [str(e) for e in res.errors]}))
"""


def test_an_unreadable_image_is_reported_per_record():
    """Root reads any file, so the reader runs as 'nobody' when the tests run as root (as CI does)."""
    d = Path(tempfile.mkdtemp(prefix="virgo-perm-"))
    try:
        os.chmod(d, 0o755)
        Image.new("RGB", (8, 8)).save(d / "ok.png")
        Image.new("RGB", (8, 8)).save(d / "secret.png")
        (d / "closed").mkdir()
        Image.new("RGB", (8, 8)).save(d / "closed" / "inside.png")
        for p in (d / "ok.png",):
            os.chmod(p, 0o644)
        os.chmod(d / "secret.png", 0o000)
        os.chmod(d / "closed", 0o000)
        f = d / "p.jsonl"
        f.write_text("".join(json.dumps(r) + "\n" for r in [
            _p(1, images=["ok.png"]), _p(2, images=["secret.png"]), _p(3, images=["closed/inside.png"])]))
        os.chmod(f, 0o644)
        proc = subprocess.run([sys.executable, "-c", _PERMISSION_PROBE, str(f)], capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out = json.loads(proc.stdout)
        assert out["ids"] == ["p1"]
        assert out["errors"][0].startswith(f"{f}:2: field 'images[0]': permission denied: ")
        assert out["errors"][1].startswith(f"{f}:3: field 'images[0]': permission denied: ")
    finally:
        os.chmod(d / "closed", 0o755)
        shutil.rmtree(d)


# ----------------------------------------------------------------------------------------- strict JSON, writers

def test_duplicate_keys_and_deep_nesting_are_bad_records(tmp_path):
    f = tmp_path / "p.jsonl"
    deep = '{"id": "p2", "question": "q", "answer": "1", "meta": {"x": ' + "[" * 300 + "]" * 300 + "}}"
    f.write_text("\n".join([json.dumps(_p(1)), '{"id": "a", "id": "b", "question": "q", "answer": "1"}', deep,
                            json.dumps(_p(4, meta={"x": [[[[1]]]]}))]) + "\n")
    res = read_records(f, Problem, strict=False)
    assert [p.id for p in res.records] == ["p1", "p4"]
    assert [e.line for e in res.errors] == [2, 3]
    assert res.errors[0].message == "invalid JSON: the key 'id' appears twice in one object"
    assert "nested deeper than 200" in res.errors[1].message


def test_invalid_utf8_is_located_and_utf16_is_named(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_bytes(_line(_p(1)) + b"\n" + b'{"id": "p2", "question": "caf\xe9", "answer": "1"}\n' + _line(_p(3)))
    res = read_records(f, Problem, strict=False)
    assert [p.id for p in res.records] == ["p1", "p3"] and "not valid UTF-8 (byte 29: b'\\xe9')" in str(res.errors[0])
    g = tmp_path / "utf16.jsonl"
    g.write_bytes((json.dumps(_p(1)) + "\n").encode("utf-16"))
    res = read_records(g, Problem, strict=False)
    assert res.records == [] and "UTF-16" in str(res.errors[0])


def test_generations_with_lone_surrogates_are_kept_with_replacement_when_asked(tmp_path):
    f = tmp_path / "g.jsonl"
    f.write_bytes(b'{"id": "a", "sample": 0, "text": "x \\ud83d y", "finish_reason": "stop"}\n')
    assert read_records(f, Generation, strict=False).errors[0].field == "text"
    res = read_records(f, Generation, strict=False, replace_invalid_utf8=True)
    assert [g.text for g in res.records] == ["x \ufffd y"] and res.replaced[0][0] == 1


def test_writers_refuse_what_the_reader_would_reject(tmp_path):
    """A record built in memory with NaN or a lone surrogate fails before anything is written."""
    with pytest.raises(RecordError, match="field 'meta.x': not a finite number"):
        dumps(Problem(id="a", question="q", answer="1", meta={"x": float("nan")}))
    with pytest.raises(RecordError, match="field 'question': .*lone surrogate"):
        write_records(tmp_path / "w.jsonl", [Problem(id="a", question="\ud800", answer="1")])
    assert not (tmp_path / "w.jsonl").exists()
    with AppendWriter(tmp_path / "a.jsonl") as w:
        w.write(Problem(id="a", question="q", answer="1"))
        with pytest.raises(RecordError):
            w.write(Problem(id="b", question="\udc80", answer="1"))
        w.write(Problem(id="c", question="q", answer="1"))
    assert [p.id for p in read_records(tmp_path / "a.jsonl", Problem)] == ["a", "c"]


def test_loads_is_strict():
    assert loads('{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    for bad in ("NaN", '{"a": Infinity}', '"\\udc00"', '{"a": 1, "a": 2}', "[" * 100_000):
        with pytest.raises(RecordError):
            loads(bad)


def test_append_writer_keeps_records_ended_by_a_lone_cr(tmp_path):
    """A torn tail is cut at the last line end of any kind: CR-terminated records are complete, not torn."""
    f = tmp_path / "g.jsonl"
    a = b'{"id": "a", "sample": 0, "text": "x", "finish_reason": "stop"}'
    f.write_bytes(a + b"\r" + a.replace(b'"sample": 0', b'"sample": 1') + b"\r" + b'{"id": "a", "sam')
    assert done_keys(f) == {("a", 0), ("a", 1)}
    with AppendWriter(f) as w:
        w.write(Generation(id="a", sample=2, text="y", finish_reason="stop"))
    assert [g.sample for g in read_records(f, Generation)] == [0, 1, 2]


def test_iter_lines_numbers_physical_lines(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_bytes(b"\xef\xbb\xbf{}\r\n\r\n  \n{}\r{\xff}\n")
    assert [(n, t, e is not None) for n, t, e in iter_lines(f)] == [(1, "{}", False), (4, "{}", False),
                                                                     (5, None, True)]


# ----------------------------------------------------------------------------------------- nothing usable left

def test_require_usable_says_why_in_one_line(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"id": "p1"}\nnot json\n')
    res = read_records(f, Problem, strict=False)
    with pytest.raises(NoUsableRecords) as ei:
        res.require_usable()
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(f"{f}: no usable records: all 2 record(s) are bad (first: line 1: ")
    assert isinstance(ei.value, RecordError)  # callers that catch RecordError / ValueError exit with it
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n \n")
    with pytest.raises(NoUsableRecords, match="no records"):
        read_records(empty, Problem, strict=False).require_usable()
    f.write_text(json.dumps(_p(1)) + "\nnot json\n")
    good = read_records(f, Problem, strict=False)
    assert good.require_usable() is good and len(good.records) == 1
