"""The Interface command of issue 6, exactly as written, on the official MathVision layout:

    virgo eval --model M --benchmark mathvision --data-dir DIR --split test --limit 200 --seed 7 --max-new-tokens 16
               --out RUN

The shared data holds the official files of testmini only; DIR is the official layout (data/test.jsonl beside
images/) made from them, as the full test set would be laid out. 200 items x 16 tokens of the tiny model take
about a minute on two busy cores, hence `slow` (it stays in the default run).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

RUN_FILES = ("generations.jsonl", "grades.jsonl", "metrics.json", "report.md")


@pytest.fixture(scope="module")
def official_layout(shared_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("MATH-V")
    (d / "data").mkdir()
    shutil.copy(shared_data / "mathvision" / "data" / "testmini.jsonl", d / "data" / "test.jsonl")
    (d / "images").symlink_to(shared_data / "mathvision" / "images", target_is_directory=True)
    return d


@pytest.mark.slow
def test_issue_interface_command(tiny_model_dir, official_layout, tmp_path):
    run = tmp_path / "RUN"
    cmd = [sys.executable, "-m", "virgo", "eval", "--model", str(tiny_model_dir), "--benchmark", "mathvision",
           "--data-dir", str(official_layout), "--split", "test", "--limit", "200", "--seed", "7",
           "--max-new-tokens", "16", "--out", str(run)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for name in RUN_FILES:
        assert (run / name).is_file(), name

    from virgo.eval import get_benchmark, select

    expected = [p.id for p in select(get_benchmark("mathvision").load(official_layout, "test"), 200, 7)]
    gens = [json.loads(line) for line in (run / "generations.jsonl").read_text().splitlines()]
    grades = [json.loads(line) for line in (run / "grades.jsonl").read_text().splitlines()]
    assert sorted(g["id"] for g in gens) == sorted(expected) and len(gens) == 200
    assert [g["id"] for g in grades] == expected  # one grade per item, in file order
    assert all(g["completion_tokens"] <= 16 for g in gens)
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["benchmark"], metrics["split"]) == ("mathvision", "test")
    assert (metrics["n"], metrics["n_missing"]) == (200, 0)
    assert sum(metrics["verdicts"].values()) == 200
    info = json.loads((run / "run.json").read_text())
    assert info["selection"]["limit"] == 200 and info["selection"]["seed"] == 7
    assert info["selection"]["total_items"] == 304 and info["generate"]["max_new_tokens"] == 16
    report = (run / "report.md").read_text()
    assert "## Accuracy" in report and "### mathvision: by level" in report
    assert f"report: {run / 'report.md'}" in proc.stdout
