"""`virgo data validate`: one located error line per bad record, good records kept, bad ones set aside byte-exact."""

from __future__ import annotations

import json
import re

from PIL import Image
from typer.testing import CliRunner

from virgo.cli import app
from virgo.data.formats import read_dataset
from virgo.data.validate import image_error, validate_file


def _good(i: int, **kw) -> dict:
    return {"id": f"g{i}", "question": f"What is {i}+{i}?", "thought": f"{i}+{i}={2 * i}. Wait, yes.",
            "solution": f"\\boxed{{{2 * i}}}", **kw}


def _dataset(tmp_path):
    """A JSONL file mixing good records with one of each kind of bad record; returns (path, {line: expected})."""
    Image.new("RGB", (16, 16), "blue").save(tmp_path / "ok.png")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 8)
    buf = tmp_path / "full.png"
    Image.new("RGB", (64, 64), "green").save(buf)
    (tmp_path / "truncated.png").write_bytes(buf.read_bytes()[:60])
    lines: list[bytes] = []
    expected: dict[int, str] = {}

    def add(obj_or_raw, error: str | None = None):
        raw = obj_or_raw if isinstance(obj_or_raw, bytes) else json.dumps(obj_or_raw, ensure_ascii=False).encode()
        lines.append(raw)
        if error:
            expected[len(lines)] = error

    add(_good(1, images=["ok.png"], domain="geometry", extra_field={"kept": True}))
    add(b'{"id": "b1", "question": "broken json", ', "invalid JSON")
    add(b'{"id": "b2", "question": "caf\xe9 in latin-1", "thought": "t", "solution": "s"}', "not valid UTF-8")
    add({"id": "b3", "question": "q", "thought": "t"}, "field 'solution': missing required field")
    add({"id": "b4", "question": "q", "thought": "t", "solution": "s", "images": "ok.png"},
        "field 'images': expected a list, got str")
    add({"id": "b5", "question": "q", "thought": "t", "solution": "s", "domain": 7},
        "field 'domain': expected str | None, got int")
    add({"id": "b6", "question": "q", "thought": "   ", "solution": "s"}, "field 'thought': must not be empty")
    add({"id": "b7", "question": "", "thought": "t", "solution": "s"}, "field 'question': must not be empty")
    add(_good(8, images=["ok.png", "missing.png"]), "field 'images[1]': image not found:")
    add(_good(9, images=["corrupt.png"]), "field 'images[0]': cannot decode image")
    add(_good(10, images=["truncated.png"]), "field 'images[0]': cannot decode image")
    add(_good(1), "field 'id': duplicate of line 1 (id 'g1')")
    add({"name": "what is this", "value": 3}, "unknown record type")
    add(b'["a", "list"]', "expected a JSON object, got list")
    add({"id": "b14", "question": "q", "thought": "t <|end_of_thought|> more", "solution": "s"},
        "field 'thought': contains the marker <|end_of_thought|>")
    add({"id": "b15", "question": "q", "response": "<|begin_of_thought|>\n\ncut off mid-thou"},
        "field 'response': has thought markers but is not a complete long thought (truncated)")
    add(_good(16, images=["https://example.com/x.png"]), "field 'images[0]': not a local file")
    add(_good(17, images=[3]), "field 'images[0]': expected a string, got int")
    add({"id": "sft", "question": "Describe.", "response": "A blue square.", "images": ["ok.png"]})
    add(_good(19))
    # Lines json cannot build at all: 200,000 nested "[" (RecursionError) and a 5,000-digit integer (ValueError).
    add(b"[" * 200_000, "invalid JSON: nested too deeply")
    add(b'{"id": "big", "question": "q", "thought": "t", "solution": "s", "n": ' + b"7" * 5000 + b"}",
        "invalid JSON: an integer literal longer than 4300 digits")
    add(_good(22))
    add(b'{"id": "torn", "question": "last line cut', "invalid JSON")  # a killed writer's torn tail
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"\n".join(lines))  # no newline at the end, like a torn file
    return path, expected, lines


def test_every_bad_record_gets_one_located_error(tmp_path):
    path, expected, lines = _dataset(tmp_path)
    out, rejects = tmp_path / "good" / "good.jsonl", tmp_path / "bad.jsonl"
    r = CliRunner().invoke(app, ["data", "validate", str(path), "--out", str(out), "--rejects", str(rejects),
                                 "--no-progress"])
    assert r.exit_code == 1
    errors = [x for x in r.output.splitlines() if re.match(rf"{re.escape(str(path))}:\d+: ", x)]
    assert len(expected) >= 12
    assert len(errors) == len(expected)  # exactly one line per bad record
    for line_text, (lineno, want) in zip(errors, sorted(expected.items())):
        assert line_text.startswith(f"{path}:{lineno}: "), line_text
        assert want in line_text, (want, line_text)
    assert f"{len(lines)} record(s): {len(lines) - len(expected)} good, {len(expected)} bad" in r.output

    # Good records are all kept, with their extras and images (re-resolved from the new location).
    _, good = read_dataset(out)
    assert good.errors == []
    assert [g.id for g in good.records] == ["g1", "sft", "g19", "g22"]
    assert good.records[0].extra == {"extra_field": {"kept": True}}
    assert good.records[0].images == [str((tmp_path / "ok.png").resolve())]
    # Bad records are set aside exactly as they were, bytes included.
    assert rejects.read_bytes() == b"".join(lines[k - 1] + b"\n" for k in sorted(expected))


def test_clean_file_exits_zero(tmp_path):
    path = tmp_path / "clean.jsonl"
    path.write_text("".join(json.dumps(_good(i)) + "\n" for i in range(5)))
    r = CliRunner().invoke(app, ["data", "validate", str(path), "--rejects", str(tmp_path / "rej.jsonl")])
    assert r.exit_code == 0, r.output
    assert "5 good, 0 bad" in r.output
    assert (tmp_path / "rej.jsonl").read_bytes() == b""


def test_validate_llamafactory_json_array(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    items = [
        {"messages": [{"role": "user", "content": "<image>What colour?"},
                      {"role": "assistant", "content": "Black."}], "images": ["a.png"], "id": "1"},
        {"messages": [{"role": "user", "content": "<image>Where?"},
                      {"role": "assistant", "content": "Here."}], "images": ["gone.png"], "id": "2"},
        {"messages": [{"role": "user", "content": "Q"},
                      {"role": "assistant", "content": "<|begin_of_thought|>\n\n\n\n<|end_of_thought|>\n\n"
                                                       "<|begin_of_solution|>x<|end_of_solution|>"}], "id": "3"},
        {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}], "id": "1"},
    ]
    path = tmp_path / "lf.json"
    path.write_text(json.dumps(items, indent=2))
    text = path.read_text().splitlines()
    starts = [i + 1 for i, t in enumerate(text) if t.startswith("  {")]
    v = validate_file(path)
    assert v.format == "llamafactory"
    assert [g.id for g in v.records] == ["1"]
    assert [(e.line, e.field) for e in v.errors] == [
        (starts[1], "images[0]"), (starts[2], "messages[1].content (thought)"), (starts[3], "id")]
    assert "must not be empty" in v.errors[1].message  # the empty thought, named by its place in the chat
    out, rejects = tmp_path / "good.json", tmp_path / "bad.json"
    r = CliRunner().invoke(app, ["data", "validate", str(path), "-o", str(out), "--rejects", str(rejects)])
    assert r.exit_code == 1
    assert [row["id"] for row in json.loads(out.read_text())] == ["1"]
    assert [row["id"] for row in json.loads(rejects.read_text())] == ["2", "3", "1"]  # a JSON array again


def test_hostile_items_of_a_json_array_are_reported_alone(tmp_path):
    good = {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}
    deep, big = "[" * 200_000 + "]" * 200_000, '{"n": ' + "1" * 5000 + "}"
    path = tmp_path / "lf.json"
    path.write_text("[\n" + ",\n".join([json.dumps({**good, "id": "1"}), deep, big, json.dumps({**good, "id": "4"})])
                    + "\n]\n")
    v = validate_file(path)
    assert [g.id for g in v.records] == ["1", "4"]  # the items after the hostile ones are still read
    assert [(e.line, e.message) for e in v.errors] == [
        (3, "invalid JSON: nested too deeply (arrays or objects deeper than Python's recursion limit)"),
        (4, "invalid JSON: an integer literal longer than 4300 digits")]


def test_record_types(tmp_path):
    path = tmp_path / "mixed.jsonl"
    rows = [{"id": "p1", "question": "q", "answer": "1"},
            {"id": "p1", "sample": 0, "text": "t", "finish_reason": "stop"},
            {"id": "p1", "sample": 1, "text": "t", "finish_reason": "length"},
            {"id": "p1", "sample": 1, "text": "t", "finish_reason": "stop"},
            {"id": "p1", "sample": 0, "verdict": "correct", "extracted": "1", "graded_by": "rule"},
            {"id": "p2", "sample": 0, "text": "t", "finish_reason": "eos"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    v = validate_file(path, check_images=False)
    assert [type(r).__name__ for r in v.records] == ["Problem", "Generation", "Generation", "Grade"]
    assert [(e.line, e.field, e.message) for e in v.errors] == [
        # Generations repeat an id once per sample: a duplicate is the same (id, sample).
        (4, "id", "duplicate of line 3 (id 'p1', sample 1)"),
        (6, "finish_reason", "must be one of ('stop', 'length'), got 'eos'")]
    v = validate_file(path, record_type="problem")
    assert len(v.records) == 1 and all("missing required field" in e.message for e in v.errors[:1])


def test_image_error_cases(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "ok.jpg")
    assert image_error(str(tmp_path / "ok.jpg")) is None
    assert "not a file" in image_error(str(tmp_path))
    (tmp_path / "empty.png").write_bytes(b"")
    assert "cannot decode" in image_error(str(tmp_path / "empty.png"))
