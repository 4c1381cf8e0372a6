"""`virgo eval` end to end on the official MathVision layout with the tiny model: generate -> grade -> metrics ->
report; re-scoring reproduces the metrics; a run killed with SIGKILL resumes; reports compare runs.

Accuracy is meaningless with a random model; the pipeline is what is tested.
"""

import json
import subprocess
import sys

import pytest
from procs import kill_after_records

RUN_FILES = ("generations.jsonl", "grades.jsonl", "metrics.json", "report.md", "manifest.json")


def _eval(model, data, out, *extra, limit=6):
    return [sys.executable, "-m", "virgo", "eval", "--model", str(model), "--benchmark", "mathvision",
            "--data-dir", str(data), "--split", "testmini", "--limit", str(limit), "--seed", "7",
            "--max-new-tokens", "16", "--out", str(out), *extra]


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "run"
    proc = subprocess.run(_eval(tiny_model_dir, shared_data / "mathvision", out), capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out


def test_run_folder_holds_everything(run_dir):
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    gens, grades = _records(run_dir / "generations.jsonl"), _records(run_dir / "grades.jsonl")
    assert len(gens) == len(grades) == 6
    assert {g["id"] for g in gens} == {g["id"] for g in grades}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    verdicts = {g["verdict"] for g in grades}
    assert verdicts <= {"correct", "wrong", "no_answer", "truncated"}
    assert json.dumps(metrics)  # plain JSON
    manifest = json.loads((run_dir / "manifest.json").read_text())
    text = json.dumps(manifest)
    assert "transformers" in text and "sha256" in text.lower()
    assert list((run_dir / "plots").glob("*.png"))


def test_rescore_gives_identical_metrics(run_dir):
    before = json.loads((run_dir / "metrics.json").read_text())
    proc = subprocess.run([sys.executable, "-m", "virgo", "eval", "--rescore", str(run_dir)], capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((run_dir / "metrics.json").read_text()) == before


def test_report_compares_two_runs(run_dir, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "virgo", "report", str(run_dir), str(run_dir), "--out",
                           str(tmp_path / "cmp"), "--label", f"{run_dir}=tiny"], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    md = next((tmp_path / "cmp").glob("*.md")).read_text()
    assert "MathVision" in md or "mathvision" in md
    assert list((tmp_path / "cmp").rglob("*.png"))


def test_killed_run_resumes_to_one_generation_per_item(tiny_model_dir, shared_data, tmp_path):
    out = tmp_path / "run"
    cmd = _eval(tiny_model_dir, shared_data / "mathvision", out, "--batch-size", "1", limit=12)
    gens = out / "generations.jsonl"
    killed = kill_after_records(cmd, gens)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    keys = [(g["id"], g["sample"]) for g in _records(gens)]
    assert len(keys) == len(set(keys)) == 12
    assert len(_records(out / "grades.jsonl")) == 12
    assert killed  # otherwise the test did not test resuming


def test_mathverse_every_multiple_choice_item_has_options(shared_data):
    """Four official items write `Choice:` instead of `Choices:`; without their options a right "B" for the gold
    "False" was graded wrong (found by the grading audit)."""
    from virgo.eval import get_benchmark

    problems = get_benchmark("mathverse").load(shared_data / "mathverse", "testmini_text_only")
    mc = [p for p in problems if p.meta.get("question_type") == "multi-choice"]
    assert len(mc) == 436 and all(p.choices for p in mc)
