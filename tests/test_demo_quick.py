"""`virgo demo --quick` end to end from the shipped base: every stage runs, files and schema are right, reruns resume.

The numbers of a quick run mean nothing (a few training steps); the finding is measured by the full demo.
"""

import json
import subprocess
import sys

import pytest

from virgo.demo.base import SHIPPED
from virgo.demo.data import QUICK

SETS = ("visual_easy", "visual_hard", "text")
KEYS = {"accuracy", "n", "stderr", "think_rate", "mean_thought_tokens", "perception_fidelity"}


@pytest.mark.slow
def test_quick_demo_runs_every_stage_and_resumes(tmp_path):
    if not (SHIPPED / "SHA256SUMS").exists():
        pytest.skip("no shipped base checkpoint")
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "virgo", "demo", "--quick", "--control", "--out", str(out), "--seed", "1",
           "--no-progress", "--threads", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Toy Virgo" in proc.stdout and "virgo-t" in proc.stdout

    results = json.loads((out / "results.json").read_text())
    assert results["seed"] == 1 and results["quick"] is True
    variants = results["variants"]
    assert {"base", "virgo-t", "oracle-visual"} <= set(variants)
    for name in ("virgo-sd", "virgo-t+sd"):  # trained, or skipped with the reason said
        assert (name in variants) != (name in results["skipped"])
    for name, entry in variants.items():
        assert set(entry) == set(SETS)
        for s in SETS:
            m = entry[s]
            assert KEYS <= set(m) and m["n"] == QUICK.eval_per_set
            assert 0.0 <= m["accuracy"] <= 1.0 and 0.0 <= m["think_rate"] <= 1.0
            assert sum(m["verdicts"].values()) == m["n"]
            assert m["accuracy"] == m["verdicts"]["correct"] / m["n"]  # the grader's verdicts, not a re-count
            gens = (out / "eval" / name / s / "generations.jsonl").read_text().splitlines()
            assert len(gens) == m["n"]
    assert variants["base"]["visual_hard"]["think_rate"] == 0.0  # the base answers directly
    report = (out / "report.md").read_text()
    assert "| model | visual easy | visual hard | text | average" in report
    assert "Does the paper's finding reproduce here?" in report
    assert (out / "accuracy.png").stat().st_size > 5000 and (out / "length.png").stat().st_size > 5000

    # A rerun resumes: trained models and finished generations are reused, results are the same.
    weights = out / "models" / "virgo-t" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert weights.stat().st_mtime_ns == stamp
    again = json.loads((out / "results.json").read_text())
    assert again["variants"] == variants
