"""`virgo data convert`: every format round-trips records exactly; the paper's LLaMA-Factory layout; errors located."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from virgo.cli import app
from virgo.data.convert import convert
from virgo.data.formats import FORMATS, detect_format, read_dataset, write_dataset
from virgo.data.formats.common import iter_json_array
from virgo.records import LongThoughtExample, SFTExample
from virgo.thought import parse_response, render_response

FORMAT_FILES = {"virgo": "out.jsonl", "llamafactory": "out.json", "still": "still.jsonl", "hf": "hf_dir",
                "parquet": "out.parquet"}


def make_records(root: Path) -> list[LongThoughtExample | SFTExample]:
    (root / "img").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 10), "red").save(root / "img" / "a.png")
    Image.new("L", (9, 9), 128).save(root / "img" / "b.jpg")
    img_a, img_b = str((root / "img" / "a.png").resolve()), str((root / "img" / "b.jpg").resolve())
    return [
        LongThoughtExample(id="geo-1", question="Find the angle x in the figure.",
                           thought="Hmm, the triangle is isosceles.\n\nWait, let me verify: 180 - 2*40 = 100.",
                           solution="The angle is $x = 100^\\circ$.\n\n\\boxed{100}", images=[img_a, img_b],
                           answer="100", domain="geometry", source="qvq",
                           extra={"meta": {"level": 3, "tags": ["a", "b"]}, "score": [1, 0], "system": "Be careful."}),
        LongThoughtExample(id="m-2", question="What is 2+2? Unicode: ∑ é 中文", thought="2+2=4",
                           solution="\\boxed{4}"),
        SFTExample(id="cap-3", question="Describe the image.", response="A red square.", images=[img_a],
                   domain="caption", source=None, extra={"n": None}),
        # A generic response with markers that is not a complete long thought (truncated) stays exact.
        SFTExample(id="t-4", question="Long one", response="<|begin_of_thought|>\n\nLet me think... and then"),
    ]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_records_round_trip_every_format(tmp_path, fmt):
    records = make_records(tmp_path)
    out = tmp_path / FORMAT_FILES[fmt]
    assert write_dataset(out, records, fmt) == len(records)
    f, result = read_dataset(out)  # detected from the name (and the first row for .jsonl)
    assert f.name == fmt
    assert result.errors == []
    assert result.records == records  # ids, thought/solution, images, answer, domain, source, extras
    assert result.lines == list(range(1, 5)) or fmt == "llamafactory"  # JSON array: lines where items start


def edge_records() -> list[LongThoughtExample | SFTExample]:
    """Records a format storing the rendered response could lose: whitespace at the ends of a section, and a
    generic response that is an exactly rendered long thought (it must come back generic)."""
    return [
        LongThoughtExample(id="ws", question="Q1", thought="  Indented first step.\n\nWait, yes.\n",
                           solution="\nSo \\boxed{1}.\n\n"),
        SFTExample(id="rendered-sft", question="Q2", response=render_response("Two.", "\\boxed{2}")),
        SFTExample(id="own-kind", question="Q3", response="Three.", extra={"kind": "caption"}),  # not virgo's kind
        LongThoughtExample(id="lt", question="Q4", thought="Four.", solution="\\boxed{4}", extra={"kind": "x"}),
    ]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_edge_records_round_trip_every_format(tmp_path, fmt):
    records = edge_records()
    out = tmp_path / FORMAT_FILES[fmt]
    write_dataset(out, records, fmt)
    _, result = read_dataset(out, fmt)
    assert result.errors == []
    assert [type(r) for r in result.records] == [type(r) for r in records]
    assert result.records == records
    again = tmp_path / ("again_" + FORMAT_FILES[fmt])
    write_dataset(again, result.records, fmt)
    assert read_dataset(again, fmt)[1].records == records


def test_rendered_sft_response_is_marked_in_llamafactory_and_still(tmp_path):
    records = edge_records()
    write_dataset(tmp_path / "lf.json", records, "llamafactory")
    rows = json.loads((tmp_path / "lf.json").read_text(encoding="utf-8"))
    # The assistant turn holds the exact response; only the ambiguous record carries virgo's kind.
    assert rows[1]["messages"][-1]["content"] == records[1].response and rows[1]["kind"] == "sft"
    assert [r.get("kind") for r in rows] == [None, "sft", "caption", "x"]
    assert rows[0]["messages"][-1]["content"] == render_response(records[0].thought, records[0].solution)
    # Without the key (a foreign file) the same text is read as the long thought it looks like.
    del rows[1]["kind"]
    (tmp_path / "foreign.json").write_text(json.dumps(rows), encoding="utf-8")
    foreign = read_dataset(tmp_path / "foreign.json")[1].records[1]
    assert isinstance(foreign, LongThoughtExample) and (foreign.thought, foreign.solution) == ("Two.", "\\boxed{2}")
    write_dataset(tmp_path / "still.jsonl", records, "still")
    still_rows = [json.loads(x) for x in (tmp_path / "still.jsonl").read_text(encoding="utf-8").splitlines()]
    assert still_rows[1]["combined_text"] == records[1].response and still_rows[1]["kind"] == "sft"
    # An extra field that would be read as virgo's kind is refused rather than silently changing the record.
    from virgo.records import RecordError

    clash = LongThoughtExample(id="c", question="Q", thought="t", solution="s", extra={"kind": "sft"})
    with pytest.raises(RecordError, match="kind"):
        write_dataset(tmp_path / "clash.json", [clash], "llamafactory")


@pytest.mark.parametrize("a,b", [("llamafactory", "still"), ("still", "hf"), ("hf", "parquet"),
                                 ("parquet", "llamafactory"), ("llamafactory", "virgo")])
def test_chained_conversions_via_cli(tmp_path, a, b):
    records = make_records(tmp_path)
    src = tmp_path / "src.jsonl"
    write_dataset(src, records, "virgo")
    mid, dst, back = tmp_path / ("m_" + FORMAT_FILES[a]), tmp_path / ("d_" + FORMAT_FILES[b]), tmp_path / "back.jsonl"
    runner = CliRunner()
    for s, d, fmt in ((src, mid, a), (mid, dst, b), (dst, back, "virgo")):
        r = runner.invoke(app, ["data", "convert", str(s), str(d), "--to", fmt])
        assert r.exit_code == 0, r.output
    assert read_dataset(back)[1].records == records


def test_llamafactory_layout_matches_the_paper(tmp_path):
    records = make_records(tmp_path)
    out = tmp_path / "lf" / "virgo.json"
    (tmp_path / "lf").mkdir()
    # Images under the output directory are written relative to it (LLaMA-Factory's media_dir).
    (tmp_path / "lf" / "img").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "lf" / "img" / "c.png")
    records[0].images = [str((tmp_path / "lf" / "img" / "c.png").resolve())] + records[0].images[1:]
    write_dataset(out, records, "llamafactory")
    rows = json.loads(out.read_text(encoding="utf-8"))
    first = rows[0]
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]
    assert first["messages"][1]["content"] == "<image><image>Find the angle x in the figure."
    assert first["messages"][2]["content"] == records[0].response
    assert parse_response(first["messages"][2]["content"]).thought == records[0].thought
    assert first["images"][0] == "img/c.png" and Path(first["images"][1]).is_absolute()
    assert first["id"] == "geo-1" and first["domain"] == "geometry" and first["meta"] == {"level": 3,
                                                                                         "tags": ["a", "b"]}
    assert rows[1]["messages"][0] == {"role": "user", "content": "What is 2+2? Unicode: ∑ é 中文"}
    assert rows[1]["images"] == []
    assert read_dataset(out)[1].records == records


def test_foreign_files_round_trip_byte_exact(tmp_path):
    """A file written by someone else -> records -> the same format gives the same rows back."""
    lf_rows = [
        {"conversations": [{"from": "human", "value": "<image>How many?"},
                           {"from": "gpt", "value": render_response("Count: 3.", "\\boxed{3}")}],
         "images": ["x.png"], "id": "q1"},
        # Whitespace differs from virgo's layout: kept as an exact generic response, not re-rendered.
        {"messages": [{"role": "user", "content": "Q"},
                      {"role": "assistant",
                       "content": "<|begin_of_thought|>\nt\n<|end_of_thought|>\n<|begin_of_solution|>\ns\n"
                                  "<|end_of_solution|>"}], "images": []},
    ]
    Image.new("RGB", (5, 5)).save(tmp_path / "x.png")
    src = tmp_path / "foreign.json"
    src.write_text(json.dumps(lf_rows), encoding="utf-8")
    _, res = read_dataset(src)
    assert res.errors == []
    lt, sft = res.records
    assert isinstance(lt, LongThoughtExample) and lt.thought == "Count: 3." and lt.images == [str(tmp_path / "x.png")]
    assert isinstance(sft, SFTExample) and sft.id.startswith("sha1-")  # a stable content id for a row without one
    out = tmp_path / "again.json"
    write_dataset(out, res.records)
    again = json.loads(out.read_text(encoding="utf-8"))
    assert again[0]["messages"][1]["content"] == lf_rows[0]["conversations"][1]["value"]
    assert again[1]["messages"] == lf_rows[1]["messages"]
    assert again[0]["images"] == ["x.png"]
    # --normalize-thoughts reads the second one as (thought, solution) instead.
    _, norm = read_dataset(src, normalize=True)
    assert isinstance(norm.records[1], LongThoughtExample) and norm.records[1].solution == "s"

    still = tmp_path / "still.jsonl"
    lines = [{"question": "Q1", "combined_text": render_response("a", "b"), "domain": "math"},
             {"question": "Q2", "combined_text": "plain answer", "domain": "puzzle"}]
    still.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines), encoding="utf-8")
    assert detect_format(still) == "still"
    _, res = read_dataset(still)
    assert [type(r).__name__ for r in res.records] == ["LongThoughtExample", "SFTExample"]
    out = tmp_path / "still2.jsonl"
    write_dataset(out, res.records, "still")
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [{k: r[k] for k in ("question", "combined_text", "domain")} for r in rows] == lines
    assert rows[0]["id"] == res.records[0].id  # ids are added so a round trip keeps them


def test_conversion_errors_are_located_and_good_rows_kept(tmp_path):
    src = tmp_path / "bad.json"
    src.write_text(
        '[\n'
        '  {"messages": [{"role": "user", "content": "ok"}, {"role": "assistant", "content": "fine"}]},\n'
        '  {"messages": [{"role": "user", "content": "<image>no image listed"},\n'
        '                {"role": "assistant", "content": "x"}]},\n'
        '  {"messages": [{"role": "user", "content": "q"}]},\n'
        '  {"messages": [{"role": "user", "content": "a<image>b"}, {"role": "assistant", "content": "x"}],'
        ' "images": ["i.png"]},\n'
        '  {"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "x"}]}\n'
        ']\n', encoding="utf-8")
    r = CliRunner().invoke(app, ["data", "convert", str(src), str(tmp_path / "good.jsonl")])
    assert r.exit_code == 1
    err_lines = [x for x in r.output.splitlines() if x.startswith(f"{src}:")]
    assert len(err_lines) == 4
    assert err_lines[0].startswith(f"{src}:3: field 'messages[0].content': has 1 <image> placeholder(s)")
    assert err_lines[1].startswith(f"{src}:5: field 'messages': expected one user turn then one assistant turn")
    assert "placeholders between text" in err_lines[2] and err_lines[2].startswith(f"{src}:6:")
    assert err_lines[3].startswith(f"{src}:7: field 'messages[0].content': expected a string, got int")
    good = read_dataset(tmp_path / "good.jsonl")[1].records
    assert [g.question for g in good] == ["ok"]


def test_json_array_items_know_their_lines(tmp_path):
    p = tmp_path / "a.json"
    p.write_bytes(b'[\n  {"a": 1},\n  {"b": "\xff"},\n\n  {"c": [1,\n 2]}, {"d": 4}\n]')
    items = list(iter_json_array(p))
    assert [(line, err is None) for line, _, _, err in items] == [(2, True), (3, False), (5, True), (6, True)]
    assert "not valid UTF-8" in items[1][3]
    p.write_text('[{"a": 1}, {"b": }]')
    items = list(iter_json_array(p))
    assert items[0][2] == {"a": 1} and "invalid JSON" in items[1][3]


def test_dataset_info_for_llamafactory(tmp_path):
    src = tmp_path / "in.jsonl"
    write_dataset(src, make_records(tmp_path), "virgo")
    (tmp_path / "lf").mkdir()
    (tmp_path / "lf" / "dataset_info.json").write_text('{"other": {"file_name": "o.json"}}')
    out = tmp_path / "lf" / "virgo_5k.json"
    r = convert(src, out, dataset_name="virgo_5k")
    assert r.written == 4 and r.errors == []
    info = json.loads((tmp_path / "lf" / "dataset_info.json").read_text())
    assert info["other"] == {"file_name": "o.json"}
    assert info["virgo_5k"]["file_name"] == "virgo_5k.json"
    assert info["virgo_5k"]["formatting"] == "sharegpt"
    assert info["virgo_5k"]["columns"] == {"messages": "messages", "images": "images"}
    with pytest.raises(ValueError, match="LLaMA-Factory"):
        convert(src, tmp_path / "x.jsonl", dataset_name="n")


def test_writers_refuse_what_they_cannot_represent(tmp_path):
    from virgo.records import RecordError

    rec = LongThoughtExample(id="a", question="see <image> here", thought="t", solution="s")
    with pytest.raises(RecordError, match="placeholder"):
        write_dataset(tmp_path / "x.json", [rec], "llamafactory")
