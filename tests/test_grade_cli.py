"""`virgo grade` end to end, as a subprocess, on real MathVision items: output records, progress bar, summary table,
resume, and bad input lines reported with file and line while every good record is graded -- model output with
bytes that are not UTF-8 included (graded, not dropped), and lines json cannot even build."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from virgo.records import Generation, Grade, Problem, read_records, write_records

# (item, response, finish_reason, expected verdict): MathVision testmini items 6 (options A-E, gold D) and
# 2955 (free-form, gold "(3,-4)").
RESPONSES = [
    ("6", (r"<|begin_of_thought|>Two striped, one spotty.<|end_of_thought|><|begin_of_solution|>\boxed{D}"
           "<|end_of_solution|>"), "stop", "correct"),
    ("6", r"The kittens are in picture (B).", "stop", "wrong"),
    ("6", "<|begin_of_thought|>Let me look at each picture in turn. Picture A has", "length", "truncated"),
    ("2955", r"So the point is \boxed{(3, -4)}.", "stop", "correct"),
    ("2955", "I could not find the point.", "stop", "no_answer"),
    ("2955", "The answer is \udcff\ud800(4, -3)", "stop", "wrong"),  # lone surrogates, escaped in the JSON
]


def _virgo(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "virgo", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "160", **(env or {})})


@pytest.fixture()
def run_files(shared_data, tmp_path):
    rows = {}
    for line in (shared_data / "mathvision/data/testmini.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        rows[r["id"]] = r
    problems = []
    for pid in ("6", "2955"):
        r = rows[pid]
        kind = "multiple_choice" if r["options"] else "free_form"
        problems.append(Problem(id=pid, question=r["question"], answer=r["answer"], choices=r["options"] or None,
                                answer_type=kind, meta={"question_type": kind}))
    write_records(tmp_path / "problems.jsonl", problems)
    with open(tmp_path / "generations.jsonl", "wb") as f:
        for i, (pid, text, fr, _) in enumerate(RESPONSES):  # ASCII JSON: lone surrogates as \udcff escapes
            f.write(json.dumps(Generation(id=pid, sample=i, text=text, finish_reason=fr).to_dict()).encode() + b"\n")
        f.write(b'{"id": "6", "sample": 90, "text": "\xff\xfe broken bytes", "finish_reason": "stop"}\n')
        f.write(b'{"id": "6", "sample": 91, "text": "no finish reason"}\n')
        f.write(b'{"id": "unknown", "sample": 0, "text": "\\\\boxed{1}", "finish_reason": "stop"}\n')
    return tmp_path


def test_virgo_grade_end_to_end(run_files):
    out, summary_json = run_files / "grades.jsonl", run_files / "summary.json"
    args = ["grade", "--problems", str(run_files / "problems.jsonl"), "--generations",
            str(run_files / "generations.jsonl"), "--out", str(out), "--benchmark", "mathvision",
            "--summary-json", str(summary_json), "--workers", "2"]
    first = _virgo(*args)
    assert first.returncode == 0, first.stderr

    grades = read_records(out, Grade)
    # Line 7's text has bytes that are not UTF-8: it is graded (with U+FFFD for them), so n counts it.
    assert [(g.id, g.sample, g.verdict) for g in grades] == \
        [(pid, i, v) for i, (pid, _, _, v) in enumerate(RESPONSES)] + [("6", 90, "no_answer")]
    # Sample 5 holds lone surrogates (not Unicode): read with U+FFFD for them and flagged like bad UTF-8.
    assert [g.sample for g in grades if g.extra.get("invalid_utf8")] == [5, 90]
    raw = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert all({"id", "sample", "verdict", "extracted", "graded_by", "extracted_by", "gold"} <= set(r) for r in raw)
    assert [(r["extracted"], r["graded_by"]) for r in raw[:2]] == [("D", "mc_letter"), ("B", "mc_letter")]
    assert raw[3]["extracted"] == "(3, -4)" and raw[2]["graded_by"] == "finish_reason"

    # Progress bar and warnings on stderr: the bad lines are named by file and line, the rest was graded.
    assert "grading" in first.stderr and "resp" in first.stderr
    assert "generations.jsonl:7: not valid UTF-8 (byte 35: b'\\xff'): decoded with U+FFFD" in first.stderr
    assert not [x for x in first.stderr.splitlines() if "skipped a bad record" in x and "generations.jsonl:7" in x]
    assert "generations.jsonl:8" in first.stderr and "finish_reason" in first.stderr
    assert "1 generation ids have no problem" in first.stderr
    # The summary table on stdout: accuracy, every verdict, every deciding rule.
    assert "accuracy = 28.57%" in first.stdout  # 2 of 7: the undecodable response counts against it
    for word in ("correct", "wrong", "no_answer", "truncated", "mc_letter", "finish_reason", "extraction"):
        assert word in first.stdout
    summary = json.loads(summary_json.read_text())
    assert summary["verdicts"] == {"correct": 2, "wrong": 2, "no_answer": 2, "truncated": 1}
    assert summary["n"] == 7 and summary["profile"] == "mathvision"

    # A second run resumes: nothing is graded twice, the summary covers every grade.
    second = _virgo(*args)
    assert second.returncode == 0, second.stderr
    assert "resuming: 7 grades already" in second.stderr and "0 to grade" in second.stderr
    assert len(out.read_text().splitlines()) == 7
    assert "accuracy = 28.57%" in second.stdout


def test_virgo_grade_survives_lines_json_cannot_build(run_files):
    """200,000 nested "[" (RecursionError inside json) and a 5,000-digit integer (ValueError) in either input are
    bad lines with a located warning; the run completes and grades every good record."""
    deep = b"[" * 200_000
    big = b'{"id": "6", "sample": 7, "text": "x", "finish_reason": "stop", "n": ' + b"1" * 5000 + b"}"
    with open(run_files / "problems.jsonl", "ab") as f:
        f.write(deep + b"\n" + big.replace(b'"sample": 7', b'"question": "q", "answer": "1"') + b"\n")
    gens = run_files / "hostile.jsonl"
    gens.write_bytes(b'{"id": "2955", "sample": 0, "text": "\\\\boxed{(3, -4)}", "finish_reason": "stop"}\n'
                     + deep + b"\n" + big + b"\n")
    out = run_files / "hostile_grades.jsonl"
    r = _virgo("grade", "--problems", str(run_files / "problems.jsonl"), "--generations", str(gens), "--out", str(out),
               "--benchmark", "mathvision", "--workers", "0", "--no-progress")
    assert r.returncode == 0, r.stderr
    for name, first in (("problems.jsonl", 3), ("hostile.jsonl", 2)):
        assert f"{name}:{first}: invalid JSON: nested too deeply" in r.stderr
        assert f"{name}:{first + 1}: invalid JSON: an integer literal longer than 4300 digits" in r.stderr
    assert [(g.id, g.verdict) for g in read_records(out, Grade)] == [("2955", "correct")]
    assert "accuracy = 100.00%" in r.stdout


def test_virgo_grade_refuses_unknown_benchmarks(run_files):
    r = _virgo("grade", "--problems", str(run_files / "problems.jsonl"), "--generations",
               str(run_files / "generations.jsonl"), "--out", str(run_files / "g.jsonl"), "--benchmark", "gsm8k")
    assert r.returncode != 0 and "no grading profile for benchmark 'gsm8k'" in r.stderr
    assert not (run_files / "g.jsonl").exists()
