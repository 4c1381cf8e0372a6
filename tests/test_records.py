"""Typed records: validation with located errors, unknown fields kept, image paths, append-only writing."""

from __future__ import annotations

import json

import pytest

from virgo.records import (
    AppendWriter,
    Generation,
    Grade,
    LongThoughtExample,
    Problem,
    RecordError,
    done_keys,
    read_records,
    write_records,
)


def test_problem_round_trip_keeps_unknown_fields(tmp_path):
    src = {"id": "p1", "question": "What is 2+2?", "answer": "4", "images": ["img/a.png"], "choices": None,
           "answer_type": "numeric", "meta": {"level": 1}, "custom": [1, 2]}
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps(src) + "\n")
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(b"png")  # the reader checks that a local image is a readable file
    (p,) = read_records(f, Problem)
    assert p.extra == {"custom": [1, 2]}
    assert p.images == [str((tmp_path / "img" / "a.png").resolve())]  # relative to the file naming it
    out = p.to_dict()
    assert out["custom"] == [1, 2] and out["meta"] == {"level": 1}


@pytest.mark.parametrize("line,field,msg", [
    ('{"id": "1", "question": "q"}', "answer", "missing required field"),
    ('{"id": "1", "question": "q", "answer": 4}', "answer", "expected a string"),
    ('{"id": "1", "question": "q", "answer": "4", "images": "a.png"}', "images", "expected a list"),
    ('{"id": "1", "question": "  ", "answer": "4"}', "question", "must not be empty"),
    ('{"id": "1", "question": "q", "answer": "4"', None, "invalid JSON"),
    ('[1, 2]', None, "expected a JSON object"),
    # Hostile lines json itself cannot build (RecursionError, ValueError) are bad lines like any other.
    ("[" * 200_000, None, "invalid JSON: nested too deeply"),
    ('{"id": "1", "question": "q", "answer": "4", "n": ' + "9" * 5000 + "}", None,
     "invalid JSON: an integer literal longer than 4300 digits"),
])
def test_problem_errors_are_located(tmp_path, line, field, msg):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"id": "0", "question": "ok", "answer": "1"}\n' + line + "\n")
    with pytest.raises(RecordError) as ei:
        read_records(f, Problem)
    e = ei.value
    assert e.line == 2 and e.path == str(f) and e.field == field and msg in str(e)
    res = read_records(f, Problem, strict=False)
    assert [r.id for r in res.records] == ["0"] and len(res.errors) == 1


def test_invalid_utf8_is_a_bad_line_unless_replacement_is_asked_for(tmp_path):
    f = tmp_path / "g.jsonl"
    f.write_bytes(b'{"id": "a", "sample": 0, "text": "ok", "finish_reason": "stop"}\n'
                  b'{"id": "a", "sample": 1, "text": "bad \xff\xfe bytes", "finish_reason": "stop"}\n'
                  b'{"id": "a", "sample": 2, "text": "x", "finish_reason": \xff}\n')  # not JSON once decoded
    strict = read_records(f, Generation, strict=False)
    assert [g.sample for g in strict.records] == [0] and "g.jsonl:2: not valid UTF-8 (byte 38" in str(strict.errors[0])
    lenient = read_records(f, Generation, strict=False, replace_invalid_utf8=True)
    assert [g.text for g in lenient.records] == ["ok", "bad \ufffd\ufffd bytes"]
    assert lenient.replaced == [(2, "not valid UTF-8 (byte 38: b'\\xff')")]  # good records read with U+FFFD
    assert len(lenient.errors) == 1 and str(lenient.errors[0]).startswith(f"{f}:3: invalid JSON")


def test_example_response_and_generation_grade_validation():
    ex = LongThoughtExample(id="e", question="q", thought="t", solution="s \\boxed{1}")
    back = LongThoughtExample.from_response(id="e", question="q", response=ex.response)
    assert (back.thought, back.solution, back.answer) == ("t", "s \\boxed{1}", "1")
    with pytest.raises(RecordError, match="finish_reason"):
        Generation.from_dict({"id": "a", "sample": 0, "text": "x", "finish_reason": "eos"})
    with pytest.raises(RecordError, match="verdict"):
        Grade.from_dict({"id": "a", "sample": 0, "verdict": "right", "extracted": None, "graded_by": "x"})
    with pytest.raises(RecordError, match="sample"):
        Generation.from_dict({"id": "a", "sample": True, "text": "x", "finish_reason": "stop"})


def test_append_writer_drops_torn_tail_and_resumes(tmp_path):
    f = tmp_path / "g.jsonl"
    with AppendWriter(f) as w:
        w.write(Generation(id="a", sample=0, text="x", finish_reason="stop"))
    with open(f, "a") as fh:
        fh.write('{"id": "a", "sample": 1, "te')  # a killed writer's torn line
    assert done_keys(f) == {("a", 0)}
    with AppendWriter(f) as w:
        w.write(Generation(id="a", sample=1, text="y", finish_reason="length"))
    gens = read_records(f, Generation)
    assert [(g.id, g.sample) for g in gens] == [("a", 0), ("a", 1)]
    assert write_records(tmp_path / "w.jsonl", gens) == 2
