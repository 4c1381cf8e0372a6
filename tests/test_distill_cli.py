"""`virgo distill` on hand-made rollout files: an incomplete rollout set fails the run with a resume hint, the
printed summary adds up, `--base-model` generates the base model's greedy answers (the tiny model), and the
distilled dataset trains with `virgo.train.train`."""

from __future__ import annotations

import json
import math
import shutil

import pytest
from click.testing import CliRunner

from virgo.cli import app
from virgo.records import Generation, Problem, read_records, write_records
from virgo.thought import render_response

N = 3
# id, question, gold, images, and which of the N rollouts are correct (a wrong rollout boxes gold + 1).
TABLE = [("t0", "What is 0 + 0?", 0, [], [True, True, True]),
         ("t1", "What is 1 + 1?", 2, [], [True, False, True]),
         ("t2", "What is 2 + 2?", 4, [], [False, False, False]),
         ("v0", "What is 3 + 3 in the picture?", 6, ["red.png"], [True, True, False])]


def _rollout(pid: str, sample: int, answer: str) -> Generation:
    # Distinct words per rollout: no repetition rule fires; closed thought and solution: the format checks pass.
    thought = " ".join(f"{pid}s{sample}w{i}" for i in range(12 + 3 * sample))
    return Generation(id=pid, sample=sample, text=render_response(thought, rf"The answer is \boxed{{{answer}}}."),
                      finish_reason="stop", prompt_tokens=20 + sample, completion_tokens=30 + sample, model="hand")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    from PIL import Image

    d = tmp_path_factory.mktemp("made")
    Image.new("RGB", (16, 16), (200, 30, 30)).save(d / "red.png")
    write_records(d / "problems.jsonl", [Problem(pid, q, str(gold), images=imgs) for pid, q, gold, imgs, _ in TABLE])
    write_records(d / "rollouts.jsonl", [_rollout(pid, s, str(gold if ok else gold + 1))
                                         for pid, _, gold, _, oks in TABLE for s, ok in enumerate(oks)])
    return d


def _copy(made, tmp_path, drop: set[tuple[str, int]] = frozenset()):
    shutil.copy(made / "problems.jsonl", tmp_path / "problems.jsonl")
    shutil.copy(made / "red.png", tmp_path / "red.png")
    gens = [g for g in read_records(made / "rollouts.jsonl", Generation) if g.key not in drop]
    write_records(tmp_path / "rollouts.jsonl", gens)
    return tmp_path / "problems.jsonl", tmp_path / "rollouts.jsonl"


def _distill(problems, out, *extra):
    return CliRunner().invoke(app, ["distill", "--problems", str(problems), "--out", str(out), "--n", str(N),
                                    "--filter-only", "--no-progress", *extra])


def test_complete_set_summary_adds_up(made, tmp_path):
    problems, out = _copy(made, tmp_path)
    res = _distill(problems, out)
    assert res.exit_code == 0, res.output
    gens = read_records(out, Generation)
    prompt, completion = sum(g.prompt_tokens for g in gens), sum(g.completion_tokens for g in gens)
    assert f"rollouts: 12 rollouts, 0 missing of 12, {prompt} prompt + {completion} completion tokens" in res.output
    # 7 of 12 correct; t0 3/3 and v0 2/3 and t1 2/3 of n=3 (medium >= 4/5, hard >= 2/5).
    assert "graded: pass rate 0.5833 per rollout, 0.75 of problems solved" in res.output
    assert "bands: easy 0, medium 1, hard 2, unused 1 (no base answers)" in res.output
    assert "dataset: 3 examples from 3 problems (band solved, policy shortest)" in res.output
    assert "incomplete" not in res.output


def test_missing_rollouts_fail_with_a_resume_hint(made, tmp_path):
    problems, out = _copy(made, tmp_path, drop={("t0", 1), ("t0", 2), ("v0", 2)})
    res = _distill(problems, out, "--band", "medium,hard")
    assert res.exit_code == 1, res.output
    assert "error: 3 of 12 rollouts are missing" in res.output
    assert "rerun without --filter-only (with --teacher) to generate them" in res.output
    assert "incomplete: 2 problems lack 3 of their 3 rollouts (not banded)" in res.output
    stats = json.loads((tmp_path / "rollouts.dataset.stats.json").read_text())
    assert stats["incomplete"] == {"problems": 2, "rollouts_missing": 3, "ids": ["t0", "v0"]}
    # t0 (1 correct of 1 graded) used to count as medium; now only the complete t1 (2 of 3: hard) is kept.
    kept = [json.loads(line)["id"] for line in (tmp_path / "rollouts.dataset.jsonl").read_text().splitlines()]
    assert kept == ["t1"]


def test_rollouts_beyond_n_are_ignored_and_reported(made, tmp_path):
    problems, out = _copy(made, tmp_path)
    res = _distill(problems, out, "--n", "2")  # the file holds samples 0-2: sample 2 is beyond --n 2
    assert res.exit_code == 0, res.output
    assert "ignored: 4 rollouts with sample >= --n 2 already in the file" in res.output
    graded = [json.loads(line) for line in (tmp_path / "rollouts.grades.jsonl").read_text().splitlines()]
    assert len(graded) == 8 and max(g["sample"] for g in graded) == 1  # the extra ones were not even graded


def test_base_model_greedy_answers_with_the_tiny_model(made, tmp_path, tiny_model_dir):
    problems, out = _copy(made, tmp_path)
    args = ["--base-model", str(tiny_model_dir), "--max-new-tokens", "8", "--band", "all"]
    res = _distill(problems, out, *args)
    assert res.exit_code == 0, res.output
    base = read_records(tmp_path / "rollouts.base.jsonl", Generation)
    assert sorted(g.id for g in base) == ["t0", "t1", "t2", "v0"] and {g.sample for g in base} == {0}
    assert all(g.settings["temperature"] == 0.0 and g.settings["top_p"] == 1.0 for g in base)  # greedy
    base_grades = [json.loads(line) for line in (tmp_path / "rollouts.base.grades.jsonl").read_text().splitlines()]
    assert sorted(g["id"] for g in base_grades) == ["t0", "t1", "t2", "v0"]
    stats = json.loads((tmp_path / "rollouts.dataset.stats.json").read_text())
    assert stats["base"]["given"] and stats["base"]["missing"] == 0 and stats["grading"]["base"]["n"] == 4
    # A random tiny model solves nothing: no problem is easy, and each example records the base verdict.
    ex = [json.loads(line) for line in (tmp_path / "rollouts.dataset.jsonl").read_text().splitlines()]
    assert stats["bands"]["easy"] == 0 and ex and all(e["base_correct"] is False for e in ex)
    # Rerunning resumes: the base answers are not generated again.
    before = (tmp_path / "rollouts.base.jsonl").read_text()
    assert _distill(problems, out, *args).exit_code == 0
    assert (tmp_path / "rollouts.base.jsonl").read_text() == before


def test_distilled_dataset_trains(made, tmp_path, tiny_model_dir):
    from virgo.train import TrainConfig, train
    from virgo.train.callbacks import read_log

    problems, out = _copy(made, tmp_path)
    assert _distill(problems, out, "--policy", "all").exit_code == 0
    dataset = tmp_path / "rollouts.dataset.jsonl"
    rows = [json.loads(line) for line in dataset.read_text().splitlines()]
    assert len(rows) == 7 and ["red.png"] in [r["images"] for r in rows]  # images relative to the dataset
    cfg = TrainConfig(model_name_or_path=str(tiny_model_dir), train_files=[str(dataset)],
                      output_dir=str(tmp_path / "sft"), max_steps=2, per_device_train_batch_size=2,
                      image_max_pixels=3136, max_length=1024, save_strategy="no", logging_steps=1, torch_threads=1)
    model_dir = train(cfg)
    assert (model_dir / "model.safetensors").is_file()
    info = json.loads((model_dir / "run_info.json").read_text())
    assert info["preflight"]["kept"] == 7  # every distilled example was read and fits
    losses = [r["loss"] for r in read_log(model_dir / "train_log.jsonl") if "loss" in r]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
