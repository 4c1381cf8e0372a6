"""`virgo eval` killed with SIGKILL while it grades (not only while it generates), then rerun: the grades and
metrics equal an uninterrupted run's, and the grades made before the kill are not made again.

A run folder of many saved generations is re-scored (`virgo eval --rescore`), so the whole run is grading. The
kill lands while grades are being written: once ``grades.jsonl.partial`` (each grade appended as it is made)
holds some lines and before ``grades.jsonl`` is replaced. The outputs are hand-written, of every kind the grader
sees (right, wrong, equivalent forms, multiple choice, no answer, cut off), so the grading is real work.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from procs import kill_after_records

from virgo.records import Generation, Grade, Problem, read_records, write_records

N = 1200  # items: enough that grading takes a while, so the kill lands in the middle of it


def _item(i: int) -> tuple[Problem, Generation]:
    a, b = i % 97 + 2, i % 13 + 3
    kind = i % 8
    if kind == 6:  # multiple choice
        choices = [str(a), str(a + 1), str(a + 2), str(a + 3)]
        p = Problem(id=f"p{i}", question=f"Which is {a} + 0?", answer="A", choices=choices,
                    answer_type="multiple_choice", meta={"level": i % 3})
    else:
        p = Problem(id=f"p{i}", question=f"What is {a} / {b}?", answer=f"\\frac{{{a}}}{{{b}}}",
                    meta={"level": i % 3})
    texts = [
        (f"<|begin_of_thought|>\n\n{a} over {b}.\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\n"
         f"\\boxed{{\\frac{{{a}}}{{{b}}}}}\n\n<|end_of_solution|>"),  # right
        f"So the answer is \\boxed{{{a / b:.6f}}}.",  # a decimal form
        f"\\boxed{{{a + 1}/{b}}}",  # wrong
        "<|begin_of_thought|>\n\nhmm\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\n...\n\n<|end_of_solution|>",
        f"<|begin_of_thought|>\n\nLet me compute {a} / {b}. Wait",  # cut off
        f"The result is $\\dfrac{{{2 * a}}}{{{2 * b}}}$, i.e. \\boxed{{\\dfrac{{{2 * a}}}{{{2 * b}}}}}",  # equivalent
        f"The answer is ({'ABCD'[i % 4]}).",  # multiple choice
        f"\\boxed{{x = {a}/{b}}}",  # an equation
    ]
    finish = "length" if kind == 4 else "stop"
    return p, Generation(id=p.id, sample=0, text=texts[kind], finish_reason=finish)


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("kill") / "run"
    d.mkdir()
    items = [_item(i) for i in range(N)]
    write_records(d / "problems.jsonl", [p for p, _ in items])
    write_records(d / "generations.jsonl", [g for _, g in items])
    (d / "run.json").write_text(json.dumps({"benchmark": "hand", "split": "test", "model": "hand-written",
                                            "profile": "default", "breakdowns": ["level"]}))
    return d


def _rescore(run):
    return [sys.executable, "-m", "virgo", "eval", "--rescore", str(run), "--workers", "1"]


@pytest.mark.slow
def test_kill_during_grading_then_rerun_equals_an_uninterrupted_run(saved_run, tmp_path):
    whole, killed_run = tmp_path / "whole", tmp_path / "killed"
    shutil.copytree(saved_run, whole)
    shutil.copytree(saved_run, killed_run)
    proc = subprocess.run(_rescore(whole), capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]

    partial = killed_run / "grades.jsonl.partial"
    killed = kill_after_records(_rescore(killed_run), partial, records=200, timeout=600)
    assert killed  # otherwise the run ended before the kill and nothing was tested
    made = len(read_records(partial, Grade, strict=False).records)  # a line torn by the kill is not a grade
    assert 200 <= made < N and not (killed_run / "grades.jsonl").exists()  # killed while grading
    assert not (killed_run / "metrics.json").exists()

    proc = subprocess.run(_rescore(killed_run), capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{N - made}/{N - made}" in proc.stderr  # only the grades the killed run had not made were made
    assert (killed_run / "grades.jsonl").read_bytes() == (whole / "grades.jsonl").read_bytes()
    assert json.loads((killed_run / "metrics.json").read_text()) == json.loads((whole / "metrics.json").read_text())
    assert not partial.exists()
    verdicts = {g.verdict for g in read_records(killed_run / "grades.jsonl", Grade)}
    assert verdicts == {"correct", "wrong", "no_answer", "truncated"}  # every kind of verdict was graded
