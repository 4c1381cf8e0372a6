"""`virgo report` content on hand-made runs (a "base" and a "virgo" run with different numbers): the paper's Table 2
layout with the published rows, breakdowns in natural order, verdicts with truncation apart, thought analytics,
report.json and the plots; plus `compute_metrics` / `thought_analytics` numbers computed by hand."""

from __future__ import annotations

import json
import math
import re

import pytest
from PIL import Image

from virgo.eval.metrics import compute_metrics, thought_analytics
from virgo.eval.report import render_report
from virgo.records import Generation, Grade, Problem, write_records

LEVELS = {"p1": 1, "p2": 2, "p3": 10, "p4": 2}  # numeric levels: 10 must sort after 2
SUBJECTS = {"p1": "algebra", "p2": "geometry", "p3": "algebra", "p4": "geometry"}


def _problems() -> list[Problem]:
    return [Problem(id=pid, question=f"Question {pid}?", answer="3", meta={"level": lvl, "subject": SUBJECTS[pid]})
            for pid, lvl in LEVELS.items()]


def _gen(pid, thought, thought_tokens, completion_tokens, text=None, finish="stop", status="complete"):
    return Generation(id=pid, sample=0, text=text if text is not None else f"<think>{thought}</think>",
                      finish_reason=finish, thought=thought, status=status, completion_tokens=completion_tokens,
                      thought_tokens=thought_tokens)


def _generations() -> list[Generation]:
    """Lengths 100 / 300 (no thought: the completion counts) / 600 / none; reflections 2 / 1 / 2 / 0."""
    return [
        _gen("p1", "Wait, that is wrong. Wait again.", 100, 150),
        _gen("p2", None, None, 300, text="The answer is 3. Hmm.", status="plain"),
        _gen("p3", "Let me verify this. Alternatively x.", 600, 700),
        _gen("p4", "x", None, None, finish="length", status="truncated"),
    ]


def _grades(verdicts: list[str]) -> list[Grade]:
    return [Grade(id=pid, sample=0, verdict=v, extracted="3", graded_by="hand")
            for pid, v in zip(LEVELS, verdicts)]


# ----------------------------------------------------------------------------- metrics by hand

def test_thought_analytics_numbers_by_hand():
    probs = {p.id: p for p in _problems()}
    t = thought_analytics(probs, _generations(), _grades(["correct", "wrong", "correct", "truncated"]), ["level"])
    assert t["n"] == 4 and t["with_thought"] == 2  # p4 has a thought but no token count
    rl = t["reasoning_length"]
    assert (rl["count"], rl["median"], rl["p90"], rl["min"], rl["max"]) == (3, 300, 600, 100, 600)
    assert rl["mean"] == pytest.approx(1000 / 3)
    assert [(b["range"], b["n"], b["accuracy"]) for b in t["accuracy_by_length"]] == [
        ("(0, 128]", 1, 1.0), ("(256, 512]", 1, 0.0), ("(512, 1024]", 1, 1.0)]
    assert {v: d["mean"] for v, d in t["length_by_verdict"].items()} == {"correct": 350, "wrong": 300}
    assert list(t["length_by"]["level"]) == ["1", "2", "10"]  # numeric order, not "1", "10", "2"
    assert {k: d["mean"] for k, d in t["length_by"]["level"].items()} == {"1": 100, "2": 300, "10": 600}
    r = t["reflections"]
    assert (r["total"], r["mean_per_response"], r["share_with_any"]) == (5, 1.25, 0.75)
    assert r["accuracy_with"] == pytest.approx(2 / 3) and r["accuracy_without"] == 0.0
    assert list(r["by_phrase"].items())[:4] == [("wait", 2), ("alternatively", 1), ("hmm", 1), ("let me verify", 1)]
    assert t["status"] == {"complete": 2, "plain": 1, "truncated": 1}
    assert t["finish_reason"] == {"length": 1, "stop": 3}
    assert t["length_histogram"]["counts"][0] == 1 and sum(t["length_histogram"]["counts"]) == 3


def test_compute_metrics_numbers_by_hand():
    m = compute_metrics(_problems() + [Problem(id="p5", question="?", answer="1")], _generations(),
                        _grades(["correct", "wrong", "correct", "truncated"]), breakdown_keys=["level", "subject"])
    assert (m["n"], m["correct"], m["accuracy"]) == (4, 2, 0.5) and m["stderr"] == pytest.approx(0.25)
    assert m["verdicts"] == {"correct": 2, "wrong": 1, "no_answer": 0, "truncated": 1}  # truncated kept apart
    assert (m["n_problems"], m["n_missing"], m["samples_per_problem"]) == (5, 1, 1)
    level = m["breakdowns"]["level"]
    assert list(level) == ["1", "2", "10"]
    assert {k: (b["n"], b["correct"]) for k, b in level.items()} == {"1": (1, 1), "2": (2, 0), "10": (1, 1)}
    assert level["2"]["verdicts"]["truncated"] == 1 and level["2"]["stderr"] == 0.0
    assert {k: b["accuracy"] for k, b in m["breakdowns"]["subject"].items()} == {"algebra": 1.0, "geometry": 0.0}


def test_difficulty_names_sort_easy_to_hard():
    probs = [Problem(id=f"q{i}", question="?", answer="1", meta={"topic_difficulty": d})
             for i, d in enumerate(["Hard", "Easy", "Medium", "Easy", None])]
    grades = [Grade(id=p.id, sample=0, verdict="correct", extracted="1", graded_by="hand") for p in probs]
    m = compute_metrics(probs, [], grades, breakdown_keys=["topic_difficulty"])
    assert list(m["breakdowns"]["topic_difficulty"]) == ["Easy", "Medium", "Hard", "(none)"]


# ----------------------------------------------------------------------------- two hand-made runs

def _run(root, label, verdicts, commits, captioned=False, stop=None):
    d = root / (label + ("-captions" if captioned else ""))
    d.mkdir()
    problems, gens, grades = _problems(), _generations(), _grades(verdicts)
    write_records(d / "problems.jsonl", problems)
    write_records(d / "generations.jsonl", gens)
    write_records(d / "grades.jsonl", grades)
    info = {"benchmark": "mathvision", "split": "test", "model": f"/models/{label}", "label": label,
            "profile": "mathvision", "breakdowns": ["level", "subject"], "paper_column": "MathVision",
            "ablation": {"kind": "caption", "captions": "/caps.jsonl"} if captioned else None}
    (d / "run.json").write_text(json.dumps(info))
    metrics = {"benchmark": "mathvision", "split": "test", "profile": "mathvision",
               **compute_metrics(problems, gens, grades, breakdown_keys=["level", "subject"])}
    (d / "metrics.json").write_text(json.dumps(metrics))
    sessions = [{"kind": "eval", "git": {"commit": c}} for c in commits]
    (d / "manifest.json").write_text(json.dumps({"git": sessions[0]["git"], "sessions": sessions,
                                                 "decoding": {"max_new_tokens": 16, "temperature": 0.0,
                                                              **({"stop": stop} if stop else {})}}))
    return d


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    base = _run(root, "base", ["wrong", "wrong", "correct", "truncated"], ["a" * 40])
    virgo = _run(root, "virgo", ["correct", "correct", "correct", "no_answer"], ["b" * 40, "b" * 40, "c" * 40],
                 stop=["</s>", "a|b\n"])
    md = render_report([base, virgo], root / "report")
    return md.read_text(), json.loads((root / "report" / "report.json").read_text()), root / "report"


def _row(md: str, first_cell: str) -> list[str]:
    line = next(x for x in md.splitlines() if x.startswith(f"| {first_cell} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_table2_ours_next_to_the_papers(report):
    md, _, _ = report
    assert "## Main results (paper Table 2 layout)" in md
    header = ["model", "Num. Data Textual", "Num. Data Visual", "MathVerse", "MathVision", "OlympiadBench", "MMMU",
              "Average"]
    assert _row(md, "model") == header
    se = f"{100 * math.sqrt(0.25 * 0.75 / 4):.1f}"
    assert _row(md, "base (this run)") == ["base (this run)", "—", "—", "—", f"**25.0** ± {se} (n=4, test)", "—",
                                           "—", "—"]
    assert _row(md, "virgo (this run)")[4] == f"**75.0** ± {se} (n=4, test)"
    assert _row(md, "Virgo-7B (D_T + D_SD) (paper)") == ["Virgo-7B (D_T + D_SD) (paper)", "5K", "7K", "36.7", "24.0",
                                                         "10.2", "46.7", "29.40"]
    assert _row(md, "Qwen2-VL-7B-Instruct (paper)") == ["Qwen2-VL-7B-Instruct (paper)", "—", "—", "24.6", "16.3",
                                                        "5.3", "54.1", "25.08"]
    assert _row(md, "Virgo-72B (D_QVQ) (paper)")[1:3] == ["—", "6.6K"]


def test_breakdown_tables_in_natural_order(report):
    md, _, _ = report
    part = md.split("### mathvision: by level")[1].split("###")[0]
    assert "| level | base / mathvision | virgo / mathvision |" in part
    rows = [line for line in part.splitlines() if line.startswith("| ") and "level" not in line]
    assert [line.split("|")[1].strip() for line in rows] == ["1", "2", "10"]
    assert _row(part, "2") == ["2", "0.0 ± 0.0 (n=2)", "50.0 ± 35.4 (n=2)"]
    assert "### mathvision: by subject" in md and "![level](plots/mathvision-level.png)" in md


def test_verdicts_keep_truncated_apart(report):
    md, _, _ = report
    section = md.split("## Verdicts")[1].split("## ")[0]
    assert "| run | correct | wrong | no_answer | truncated | hit token limit |" in section
    assert _row(section, "base / mathvision") == ["base / mathvision", "1", "2", "0", "1", "1"]
    assert _row(section, "virgo / mathvision") == ["virgo / mathvision", "3", "0", "1", "0", "1"]


def test_thought_analytics_sections(report):
    md, _, _ = report
    assert "## Thought analytics" in md and "![length histogram](plots/length-histogram.png)" in md
    buckets = md.split("### Accuracy by reasoning-length bucket")[1].split("###")[0]
    rows = [r for r in buckets.splitlines() if r.startswith("| base / mathvision |")]
    assert [_row(r, "base / mathvision")[1:4] for r in rows] == [
        ["(0, 128]", "1", "0.0 ± 0.0 (n=1)"], ["(256, 512]", "1", "0.0 ± 0.0 (n=1)"],
        ["(512, 1024]", "1", "100.0 ± 0.0 (n=1)"]]
    refl = md.split("### Reflection phrases (most frequent)")[1]
    assert _row(refl, "virgo / mathvision")[1].startswith("wait (2), alternatively (1), hmm (1), let me verify (1)")
    by_level = md.split("### Mean reasoning length by level")[1].split("###")[0]
    assert _row(by_level, "10") == ["10", "600", "600"] and _row(by_level, "1") == ["1", "100", "100"]
    thought = md.split("## Thought analytics")[1].split("###")[0]
    # with thought, mean/median/p90/max length, reflections per response, % with any, accuracy with / without
    assert _row(thought, "base / mathvision")[1:] == ["2/4", "333", "300", "600", "600", "1.25", "75.0", "33.3",
                                                      "0.0"]


def test_overview_accuracy(report):
    md, _, _ = report
    overview = md.split("## Accuracy")[1].split("## ")[0]
    se = f"{100 * math.sqrt(0.25 * 0.75 / 4):.1f}"
    assert _row(overview, "virgo / mathvision") == ["virgo / mathvision", "test", "/models/virgo",
                                                    f"75.0 ± {se} (n=4)", "0", "mathvision"]


def test_report_json_and_every_plot(report):
    md, data, out = report
    assert [r["label"] for r in data["runs"]] == ["base", "virgo"]
    assert data["table2"]["base"]["columns"]["MathVision"]["accuracy"] == 0.25
    assert data["table2"]["virgo"]["columns"]["MathVision"]["n"] == 4 and data["table2"]["virgo"]["average"] is None
    paper = {r["model"]: r for r in data["paper"]["table2"]}
    assert paper["Virgo-7B (D_SD)"]["visual"] == "7K" and paper["Virgo-7B (D_SD)"]["scores"]["MathVision"] == 23.1
    assert data["runs"][1]["metrics"]["thought"]["reflections"]["total"] == 5
    expected = {"plots/verdicts.png", "plots/mathvision-level.png", "plots/mathvision-subject.png",
                "plots/length-histogram.png", "plots/accuracy-by-length.png", "plots/length-by-level.png",
                "plots/length-by-subject.png", "plots/reflections.png"}
    assert set(data["plots"]) == expected
    for rel in expected:
        with Image.open(out / rel) as im:
            assert im.format == "PNG" and im.size[0] > 100
        assert f"({rel})" in md  # every plot is shown in the markdown


def test_manifest_section_lists_every_commit(report):
    md, _, _ = report
    repro = md.split("## Reproducibility")[1]
    assert _row(repro, "base / mathvision")[1] == "a" * 12
    assert _row(repro, "virgo / mathvision")[1] == f"{'b' * 12} → {'c' * 12} (3 sessions)"
    line = next(x for x in repro.splitlines() if x.startswith("| virgo / mathvision |"))
    # stop strings as JSON, a "|" escaped: the row keeps its 7 cells
    assert 'temperature=0.0, stop=["</s>", "a\\|b\\n"]' in line
    assert len(re.split(r"(?<!\\)\|", line.strip("|"))) == 7


def test_perception_table_tells_reasoning_from_perception_gains(tmp_path):
    # With images virgo beats base by 50 points; with captions by 25: 25 points came through perception.
    runs = [_run(tmp_path, "base", ["wrong", "wrong", "correct", "truncated"], ["a" * 40]),
            _run(tmp_path, "virgo", ["correct", "correct", "correct", "no_answer"], ["a" * 40]),
            _run(tmp_path, "base", ["wrong", "wrong", "wrong", "truncated"], ["a" * 40], captioned=True),
            _run(tmp_path, "virgo", ["correct", "wrong", "wrong", "no_answer"], ["a" * 40], captioned=True)]
    md = render_report(runs, tmp_path / "report").read_text()
    section = md.split("## Perception versus reasoning")[1].split("\n## ")[0]
    assert _row(section, "base") == ["base", "mathvision", "25.0", "0.0", "25.0"]
    assert _row(section, "virgo") == ["virgo", "mathvision", "75.0", "25.0", "50.0"]
    assert _row(section, "mathvision") == ["mathvision", "virgo vs base", "+50.0", "+25.0", "+25.0"]
    assert "| base / mathvision (captions) |" in md  # named apart in the side-by-side tables
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    # Caption runs stay out of Table 2 (not the paper's setting): its cells are the image runs'.
    assert {k: v["columns"]["MathVision"]["accuracy"] for k, v in data["table2"].items()} == {"base": 0.25,
                                                                                           "virgo": 0.75}
    assert [(p["label"], p["images"], p["captions"]) for p in data["perception"]] == [("base", 0.25, 0.0),
                                                                                      ("virgo", 0.75, 0.25)]
