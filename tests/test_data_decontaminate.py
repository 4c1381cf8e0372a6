"""`virgo data decontaminate`: planted copies of benchmark questions (reformatted) are found with the matched n-gram
and filtered out; real disjoint text (MATH-500 against MathVerse) gives no overlap; `virgo train`'s pre-flight
warning. Real benchmark files from the shared data."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from virgo.cli import app
from virgo.data.decontaminate import Item, build_index, preflight_warnings, words
from virgo.records import LongThoughtExample, Problem, read_records, write_records

# MATH-500 items that are in MATH-Vision too (MATH-V took some figure problems from MATH): a true overlap.
MATH500_IN_MATHVISION = {"test/algebra/1349.json", "test/prealgebra/1044.json"}


def _math500(shared_data, n=None) -> list[LongThoughtExample]:
    rows = [json.loads(line) for line in (shared_data / "text_math" / "math500.jsonl").read_text().splitlines()]
    return [LongThoughtExample(id=r["unique_id"], question=r["problem"], thought="Let me think.",
                               solution=r["solution"]) for r in rows[:n]]


def _planted(shared_data) -> tuple[list[LongThoughtExample], dict[str, str]]:
    """20 clean MATH-500 records and 3 that copy a MathVision question, reformatted (case, LaTeX, spacing)."""
    from virgo.eval.registry import get_benchmark

    mv = {p.id: p for p in get_benchmark("mathvision").load(shared_data / "mathvision", "testmini")}
    clean = [r for r in _math500(shared_data, 40) if r.id not in MATH500_IN_MATHVISION][:20]
    long_ones = [p for p in mv.values() if len(words(p.question)) >= 25][:3]
    planted = {}
    for i, p in enumerate(long_ones):
        text = p.question.split("\n")[0]
        variants = [text.upper(), "$" + text.replace(" ", "  ") + "$", f"**Problem.** {text.replace(',', ' ,')}"]
        clean.insert(5 * i + 2, LongThoughtExample(id=f"planted-{i}", question=f"Consider: {variants[i]} Be brief.",
                                                   thought="...", solution="..."))
        planted[f"planted-{i}"] = p.id
    return clean, planted


def _run(*args) -> str:
    res = CliRunner().invoke(app, ["data", "decontaminate", *map(str, args)])
    assert res.exit_code == 0, res.output
    return res.output


def test_normalisation():
    assert words("The $\\frac{1}{2}$ of <image 1> ＡＢＣ, is   x²!") == ["the", "frac", "1", "2", "of", "abc", "is",
                                                                      "x2"]
    assert words("<|begin_of_thought|>一个三角形") == ["一", "个", "三", "角", "形"]


def test_planted_overlaps_are_found_and_filtered(shared_data, tmp_path):
    records, planted = _planted(shared_data)
    train = tmp_path / "train.jsonl"
    write_records(train, records)
    _run(train, "--against", f"mathvision:testmini={shared_data / 'mathvision'}", "--out", tmp_path / "clean.jsonl")
    report = json.loads((tmp_path / "train.decontamination.json").read_text())
    assert report["ngram"] == 13 and report["n_train"] == 23 and report["n_contaminated"] == 3
    found = {(o["train_id"], o["item_id"]) for o in report["overlaps"]}
    assert found == set(planted.items())
    for o in report["overlaps"]:
        assert len(o["ngram"].split()) == 13 and o["ngram"] in " ".join(words(
            next(r for r in records if r.id == o["train_id"]).question))
    kept = read_records(tmp_path / "clean.jsonl", LongThoughtExample)
    assert [r.id for r in kept] == [r.id for r in records if r.id not in planted]
    md = (tmp_path / "train.decontamination.md").read_text()
    assert "3 of 23 training records" in md and "| planted-0 | mathvision |" in md


def test_disjoint_real_text_has_no_overlap(shared_data, tmp_path):
    """All 500 MATH-500 questions and solutions against the 788 MathVerse questions: nothing in common."""
    train = tmp_path / "math500.jsonl"
    write_records(train, _math500(shared_data))
    probs = tmp_path / "mathverse.jsonl"
    from virgo.eval.registry import get_benchmark

    write_records(probs, get_benchmark("mathverse").load(shared_data / "mathverse", "testmini_text_only"))
    out = _run(train, "--against", probs, "--fields", "all", "--out", tmp_path / "same.jsonl")
    report = json.loads((tmp_path / "math500.decontamination.json").read_text())
    assert report["n_contaminated"] == 0 and report["overlaps"] == [] and report["benchmarks"]["mathverse"] == {
        "items": 788, "train_records_overlapping": 0, "items_overlapped": 0}
    assert len(read_records(tmp_path / "same.jsonl", LongThoughtExample)) == 500
    assert "0 of 500 record(s) overlap" in out


def test_the_true_overlap_of_math500_and_mathvision(shared_data, tmp_path):
    train = tmp_path / "math500.jsonl"
    write_records(train, _math500(shared_data))
    _run(train, "--against", f"mathvision:testmini={shared_data / 'mathvision'}", "--out", tmp_path / "clean.jsonl")
    report = json.loads((tmp_path / "math500.decontamination.json").read_text())
    assert {o["train_id"] for o in report["overlaps"]} == MATH500_IN_MATHVISION


def test_short_items_match_whole(tmp_path):
    short = Problem(id="s", question="How many edges does a cube have?", answer="12")  # 7 words
    index = build_index([Item("b", short.id, short.question)], n=13, min_words=7)
    assert set(index.matches("Q: how many EDGES does a cube have? Explain.")) == {("b", "s")}
    assert index.matches("how many edges does a sphere have") == {}
    assert build_index([Item("b", "s", short.question)], n=13, min_words=8).matches(short.question) == {}


def test_bad_against_is_one_line(tmp_path):
    train = tmp_path / "t.jsonl"
    write_records(train, [LongThoughtExample(id="a", question="q", thought="t", solution="s")])
    res = CliRunner().invoke(app, ["data", "decontaminate", str(train), "--against", "nonexistent.jsonl"])
    assert res.exit_code == 2 and "NAME=DATA_DIR" in res.output and "Traceback" not in res.output


def test_train_preflight_warns_about_benchmarks_on_disk(shared_data, tmp_path):
    records, planted = _planted(shared_data)
    dirty, clean = tmp_path / "dirty.jsonl", tmp_path / "clean.jsonl"
    write_records(dirty, records)
    write_records(clean, [r for r in records if r.id not in planted])
    warnings = preflight_warnings([dirty, clean], [shared_data])
    assert len(warnings) == 1 and warnings[0].startswith(f"{dirty}: 3 training record(s) share a 13-gram with 3 "
                                                          "mathvision item(s)")
    assert preflight_warnings([clean], [tmp_path]) == []  # no benchmark on disk there


@pytest.mark.parametrize("n", [8, 20])
def test_ngram_length_is_configurable(shared_data, tmp_path, n):
    records, planted = _planted(shared_data)
    train = tmp_path / "train.jsonl"
    write_records(train, records)
    _run(train, "--against", f"mathvision:testmini={shared_data / 'mathvision'}", "--ngram", n)
    report = json.loads((tmp_path / "train.decontamination.json").read_text())
    assert report["ngram"] == n and {o["train_id"] for o in report["overlaps"]} >= set(planted)
    assert all(len(o["ngram"].split()) == n for o in report["overlaps"])
    assert (tmp_path / "train.decontaminated.jsonl").is_file()  # the default output name
