"""`virgo data validate`: one located error line per bad record, good records kept, bad ones set aside byte-exact."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner
from PIL import Image

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


# ----------------------------------------------------------------------------- >= 50 kinds of bad record

def _kinds(d):
    """(raw line, expected message part) for one record of each kind of bad record, images made in ``d``."""
    Image.new("RGB", (8, 8), "red").save(d / "ok.png")
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 8)
    (d / "empty.png").write_bytes(b"")
    (d / "a_dir.png").mkdir()
    (d / "loop_a.png").symlink_to("loop_b.png")
    (d / "loop_b.png").symlink_to("loop_a.png")
    good = _good(0)

    def row(error, **kw):
        return json.dumps({**good, **kw}, ensure_ascii=False).encode(), error

    def raw(text, error):
        return (text if isinstance(text, bytes) else text.encode()), error

    return [
        raw('{"id": "t1", "question": "unterminated', "invalid JSON: Unterminated string"),
        raw('{"id": "t2", "question": "q", "thought": "t", "solution": "s"} trailing', "invalid JSON: Extra data"),
        raw('{"id": "t3"}{"id": "t4"}', "invalid JSON: Extra data"),
        raw("{'id': 't5', 'question': 'q'}", "invalid JSON: Expecting property name"),
        raw('{"id": "t6", "question": "q", "thought": "t", "solution": "s",}',
            "invalid JSON: Expecting property name"),
        raw('{id: "t7"}', "invalid JSON: Expecting property name"),
        raw('{"id": "t8", "question": "q", "thought": "t", "solution": "s", "x": NaN}', "NaN is not a finite number"),
        raw('{"id": "t9", "question": "q", "thought": "t", "solution": "s", "x": Infinity}', "Infinity is not a"),
        raw('{"id": "t10", "question": "q", "thought": "t", "solution": "s", "x": -Infinity}', "-Infinity is not"),
        raw('{"id": "t11", "question": "q", "thought": "t", "solution": "s", "x": 1e400}', "1e400 is not a finite"),
        raw('{"id": "t12", "question": "\\ud800", "thought": "t", "solution": "s"}',
            "field 'question': holds a lone surrogate \\ud800"),
        raw('{"id": "t13", "question": "q", "thought": "t", "solution": "s", "m": {"k": ["\\udfff"]}}',
            "field 'm.k[0]': holds a lone surrogate"),
        raw('{"id": "t14", "question": "q", "thought": "t", "solution": "s", "\\udc00": 1}', "an object key holds"),
        raw(b'{"id": "t15", "question": "caf\xe9", "thought": "t", "solution": "s"}', "not valid UTF-8"),
        raw(b'{"id": "t16", "question": "\xc0\xaf", "thought": "t", "solution": "s"}', "not valid UTF-8"),
        raw(b'{"id": "t17", "question": "\xed\xa0\x80", "thought": "t", "solution": "s"}', "not valid UTF-8"),
        raw('{"id": "t18", "question": "tab\there", "thought": "t", "solution": "s"}', "Invalid control character"),
        raw(b'{"id": "t19", "question": "nul\x00", "thought": "t", "solution": "s"}', "Invalid control character"),
        raw("[" * 100_000, "invalid JSON: nested too deeply"),
        raw('{"id": "t21", "question": "q", "thought": "t", "solution": "s", "x": ' + "[" * 250 + "]" * 250 + "}",
            "nested deeper than 200 levels"),
        raw('{"id": "t22", "question": "q", "thought": "t", "solution": "s", "n": ' + "9" * 5000 + "}",
            "an integer literal longer than 4300 digits"),
        raw('{"id": "t23", "id": "again", "question": "q", "thought": "t", "solution": "s"}', "appears twice"),
        raw('["a", "list"]', "expected a JSON object, got list"),
        raw('"just a string"', "expected a JSON object, got str"),
        raw("42", "expected a JSON object, got int"),
        raw("null", "expected a JSON object, got null"),
        raw('// a comment {"id": "t28"}', "invalid JSON: Expecting value"),
        raw('{"id": "t29", "question": "bad \\x escape", "thought": "t", "solution": "s"}', "Invalid \\escape"),
        raw("hello", "invalid JSON: Expecting value"),
        raw('{"id": "t31", "question": "q", "thought": "t"}', "field 'solution': missing required field"),
        raw('{"id": "t32", "thought": "t", "solution": "s"}', "field 'question': missing required field"),
        raw('{"question": "q", "thought": "t", "solution": "s"}', "field 'id': missing required field"),
        row("field 'images': expected a list, got str", id="t34", images="ok.png"),
        row("field 'images[0]': expected a string, got int", id="t35", images=[7]),
        row("field 'domain': expected str | None, got int", id="t36", domain=3),
        row("field 'id': expected a string, got int", id=37),
        row("field 'thought': must not be empty", id="t38", thought=""),
        row("field 'question': must not be empty", id="t39", question=" \t "),
        row("field 'solution': must not be empty", id="t40", solution=""),
        row("field 'thought': contains the marker <|begin_of_solution|>", id="t41", thought="a <|begin_of_solution|>"),
        row("field 'solution': contains the marker <|end_of_thought|>", id="t42", solution="<|end_of_thought|> x"),
        row("field 'question': contains the marker <|begin_of_thought|>", id="t43", question="<|begin_of_thought|>"),
        raw(json.dumps({"id": "t44", "question": "q", "response": "<|begin_of_thought|>\n\nhalf"}),
            "field 'response': has thought markers but is not a complete long thought (truncated)"),
        row("field 'id': duplicate of line 1 (id 'g0')"),
        raw('{"name": "what is this"}', "unknown record type"),
        raw("{}", "unknown record type"),
        row("field 'images[0]': image not found: ", id="t48", images=["missing.png"]),
        row("field 'images[0]': not a file (a directory): ", id="t49", images=["a_dir.png"]),
        row("field 'images[0]': symlink loop: ", id="t50", images=["loop_a.png"]),
        row("field 'images[0]': cannot decode image", id="t51", images=["corrupt.png"]),
        row("field 'images[0]': cannot decode image", id="t52", images=["empty.png"]),
        row("field 'images[0]': not a local file", id="t53", images=["https://example.com/x.png"]),
        row("field 'images[0]': not a local file", id="t54", images=["data:image/png;base64,AAAA"]),
        row("field 'images[0]': not a usable path (it holds a NUL character)", id="t55", images=["a\x00b.png"]),
        row("field 'images[0]': image not found (a parent is not a directory)", id="t56", images=["ok.png/x.png"]),
        row("field 'thought': expected a string, got null", id="t57", thought=None),
        row("field 'source': expected str | None, got list", id="t58", source=["a"]),
        row("field 'answer': expected str | None, got int", id="t59", answer=5),
        raw('{"id": "t60", "sample": 0, "text": "t", "finish_reason": "eos"}', "field 'finish_reason': must be one"),
        raw('{"id": "t61", "sample": -1, "text": "t", "finish_reason": "stop"}', "field 'sample': must be >= 0"),
        raw('{"id": "t62", "sample": 0, "verdict": "right", "extracted": null, "graded_by": "x"}',
            "field 'verdict': must be one of"),
        raw('{"id": "t63", "question": "q", "answer": "1", "choices": "A or B"}',
            "field 'choices': expected list[str] | None, got str"),
    ]


def test_fifty_kinds_of_bad_record_one_line_each_every_good_record_kept(tmp_path):
    """Issue 18: >= 50 kinds of bad record, mixed with good ones under every line ending and a BOM."""
    kinds = _kinds(tmp_path)
    assert len(kinds) >= 60
    lines: list[bytes] = [b"\xef\xbb\xbf" + json.dumps(_good(0, images=["ok.png"])).encode()]
    expected: dict[int, str] = {}
    good_ids = ["g0"]
    for k, (line, error) in enumerate(kinds, start=1):
        lines.append(line)
        expected[len(lines)] = error
        lines.append(json.dumps(_good(k, source="mixed")).encode())  # a good record after every bad one
        good_ids.append(f"g{k}")
    endings = [b"\n", b"\r\n", b"\r"]
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"".join(line + endings[i % 3] for i, line in enumerate(lines)))
    out, rejects = tmp_path / "good.jsonl", tmp_path / "rejects.jsonl"

    r = CliRunner().invoke(app, ["data", "validate", str(path), "--out", str(out), "--rejects", str(rejects),
                                 "--no-progress"])
    assert r.exit_code == 1, r.output[-3000:]
    printed = [x for x in r.output.splitlines() if re.match(rf"{re.escape(str(path))}:\d+: ", x)]
    assert len(printed) == len(expected)  # exactly one line per bad record
    for text, (lineno, want) in zip(printed, sorted(expected.items())):
        assert text.startswith(f"{path}:{lineno}: "), (text, lineno)
        assert want in text, (want, text)
    assert f"{len(lines)} record(s): {len(good_ids)} good, {len(expected)} bad" in r.output

    _, kept = read_dataset(out)
    assert kept.errors == [] and [g.id for g in kept.records] == good_ids  # every good record, in order
    assert kept.records[0].images == [str((tmp_path / "ok.png").resolve())]
    assert rejects.read_bytes() == b"".join(lines[k - 1] + b"\n" for k in sorted(expected))
