"""`virgo demo --quick` end to end from the shipped base: every stage runs, files and schema are right, the piped log
is readable, reruns resume.

The numbers of a quick run mean nothing (a few training steps); the finding is measured by the full demo.
"""

import json
import re
import subprocess
import sys
from collections import Counter

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
    # The default two stages side by side, output piped (as into a log file): progress bars are off by themselves.
    cmd = [sys.executable, "-m", "virgo", "demo", "--quick", "--control", "--rl", "--out", str(out), "--seed", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Toy Virgo" in proc.stdout and "virgo-t" in proc.stdout
    assert_clean_log(proc.stdout + proc.stderr, out)

    results = json.loads((out / "results.json").read_text())
    assert results["seed"] == 1 and results["quick"] is True
    threads = results["torch_threads"]  # fixed per stage: Virgo-T on both cores, the rest on one each
    assert threads["train virgo-t"] == 2 and threads["train virgo-t+sd"] == threads["train virgo-sd"] == 1
    assert threads["eval base"] == threads["distill 1/2"] == 1
    variants = results["variants"]
    assert {"base", "virgo-t", "oracle-visual", "virgo-t+rl"} <= set(variants)
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

    ran = set(results["seconds"])
    assert {"train virgo-t", "distill 1/2", "distill 2/2", "eval base", "eval virgo-t", "train oracle-visual",
            "train virgo-t+rl", "eval virgo-t+rl"} <= ran
    rl_claim = [c for c in report.splitlines() if "Virgo-T+RL beats Virgo-T" in c]
    assert len(rl_claim) == 1 and "points, 2 SE" in rl_claim[0]  # checked and reported, whichever way it went
    assert (out / "models" / "virgo-t+rl" / "rl_config.yaml").exists()  # trained by `virgo rl`
    assert results["reused"] == [] and all(v > 0 for v in results["seconds"].values())

    # A rerun resumes: trained models and finished generations are reused, results are the same, and each stage
    # keeps the time it took when it ran (not the near-zero time of being reused).
    weights = out / "models" / "virgo-t" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert weights.stat().st_mtime_ns == stamp
    again = json.loads((out / "results.json").read_text())
    assert again["variants"] == variants
    assert again["seconds"] == results["seconds"] and set(again["reused"]) == ran
    assert "train virgo-t: done in an earlier run, reused" in proc.stdout
    assert "Reused from an earlier run" in (out / "report.md").read_text()


def assert_clean_log(log: str, out) -> None:
    """The piped log is for reading: one line per logged training step in Virgo's format, no raw Trainer dicts,
    no progress-bar redraws, no DeepSpeed accelerator notice, no FutureWarning, no library warning twice."""
    assert "{'loss'" not in log and "'grad_norm'" not in log
    assert "\r" not in log and "it/s]" not in log and "Loading weights" not in log
    assert "DeepSpeed" not in log and "accelerator" not in log.lower()
    assert "FutureWarning" not in log and "DeprecationWarning" not in log
    warned = Counter(line.split("] ", 1)[-1] for line in log.splitlines() if "Warning" in line)
    assert all(n == 1 for n in warned.values()), warned
    for name in ("virgo-t", "oracle-visual"):  # every trained stage, its lines prefixed with its job
        logged = (out / "models" / name / "train_log.jsonl").read_text().splitlines()
        lines = [x for x in log.splitlines() if x.startswith(f"[train {name}] step ")]
        assert len(lines) == len(logged) >= 2, (lines, logged)
        assert all(re.fullmatch(rf"\[train {re.escape(name)}\] step \d+/\d+ \(epoch [\d.]+\), .+", x) for x in lines)
