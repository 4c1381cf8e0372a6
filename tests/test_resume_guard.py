"""Resume guards: `virgo generate` and `virgo distill` keep a run header beside their output, and a rerun with another
model or other settings into the same output refuses, naming what differs (old -> new), unless forced.

Issue 18: generate resumed by (id, sample) alone, so a rerun with other settings silently mixed two runs.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from virgo.distill.config import DistillConfig
from virgo.distill.pipeline import distill
from virgo.distill.rollout import distill_rollouts
from virgo.eval.run import prepare_run
from virgo.grade.config import GradeConfig
from virgo.infer import GenerateConfig
from virgo.infer.runner import run_generate
from virgo.records import Generation, Problem, read_records
from virgo.records.runheader import RunMismatchError, header_path

PROBLEMS = [Problem(id=f"q{i}", question=f"What is {i} + 1?", answer=str(i + 1)) for i in range(3)]


def _gen(model, out, cfg, **kw):
    return run_generate(model, PROBLEMS, out, cfg, progress=False, **kw)


def _header(out):
    return json.loads(header_path(out).read_text())


@pytest.fixture
def cfg():
    return GenerateConfig(max_new_tokens=3, chat_template="qwen2vl")


def test_a_rerun_with_other_settings_refuses_and_names_them(tiny_model_dir, tmp_path, cfg):
    out = tmp_path / "gens.jsonl"
    _gen(tiny_model_dir, out, cfg)
    assert header_path(out) == tmp_path / "gens.run.json"
    head = _header(out)
    assert head["kind"] == "generate" and head["identity"]["model"] == os.path.realpath(tiny_model_dir)
    assert head["identity"]["max_new_tokens"] == 3 and head["forced"] == []
    # top_k, min_p and the OpenAI penalties are in the identity only when set: outputs written before they existed
    # keep resuming
    assert not {"top_k", "min_p", "presence_penalty", "frequency_penalty"} & set(head["identity"])

    # The same settings resume (nothing new to do), even with the model named by another path.
    rel = os.path.relpath(tiny_model_dir)
    assert _gen(rel, out, cfg)["already_done"] == 3

    with pytest.raises(RunMismatchError) as ei:
        _gen(tiny_model_dir, out, cfg.replace(max_new_tokens=5, temperature=0.7, thinking_budget=2))
    msg = str(ei.value)
    assert msg.startswith(f"{out} was written with other settings (")
    for part in ("max_new_tokens: 3 -> 5", "temperature: 0.0 -> 0.7", "thinking_budget: None -> 2", "seed: None -> 0",
                 "--force"):
        assert part in msg, (part, msg)
    assert "\n" not in msg
    for change in ({"prompt": "plain"}, {"chat_template": "qwen2_5vl"}, {"force_wait": 1}, {"system": "Be brief."},
                   {"repetition_penalty": 1.0}, {"top_k": 20}, {"min_p": 0.05},
                   {"presence_penalty": 0.5}, {"frequency_penalty": -0.5}):
        with pytest.raises(RunMismatchError, match=f"{next(iter(change))}: "):
            _gen(tiny_model_dir, out, cfg.replace(**change))
    other = tmp_path / "other-model"
    shutil.copytree(tiny_model_dir, other)
    with pytest.raises(RunMismatchError, match=r"model: '.*' -> '.*other-model'"):
        _gen(other, out, cfg)
    assert len(read_records(out, Generation)) == 3  # nothing was appended by the refused runs

    # Forced: the run appends, and the header says what changed and when.
    with pytest.warns(UserWarning, match="as forced"):
        s = _gen(tiny_model_dir, out, cfg.replace(n=2, temperature=0.5), force=True)
    assert s["generated"] == 3  # sample 1 of each problem
    forced = _header(out)["forced"]
    assert len(forced) == 1 and forced[0]["changed"]["temperature"] == [0.0, 0.5] and forced[0]["at"]
    assert _header(out)["identity"]["temperature"] == 0.5


def test_an_edited_prompt_file_is_another_run(tiny_model_dir, tmp_path, cfg):
    prompt = tmp_path / "mine.txt"
    prompt.write_text("Think first. ")
    out = tmp_path / "gens.jsonl"
    _gen(tiny_model_dir, out, cfg.replace(prompt=str(prompt)))
    prompt.write_text("Answer at once. ")
    with pytest.raises(RunMismatchError, match="prompt_sha256: "):
        _gen(tiny_model_dir, out, cfg.replace(prompt=str(prompt)))


def test_outputs_without_a_header_are_checked_against_their_records(tiny_model_dir, tmp_path, cfg):
    """An output written before run headers existed (or whose header was deleted): its records say how."""
    out = tmp_path / "gens.jsonl"
    _gen(tiny_model_dir, out, cfg)
    header_path(out).unlink()
    with pytest.raises(RunMismatchError, match="max_new_tokens: 3 -> 4"):
        _gen(tiny_model_dir, out, cfg.replace(max_new_tokens=4))
    assert not header_path(out).exists()
    _gen(tiny_model_dir, out, cfg)  # the same settings: resumes and writes the header
    assert _header(out)["identity"]["max_new_tokens"] == 3


def test_a_stale_header_without_records_does_not_refuse(tiny_model_dir, tmp_path, cfg):
    out = tmp_path / "gens.jsonl"
    _gen(tiny_model_dir, out, cfg)
    out.unlink()  # the records are gone: nothing to mix
    _gen(tiny_model_dir, out, cfg.replace(max_new_tokens=2))
    assert _header(out)["identity"]["max_new_tokens"] == 2


def test_distill_rollouts_are_guarded_too(tiny_model_dir, tmp_path):
    out = tmp_path / "rollouts.jsonl"
    cfg = GenerateConfig(max_new_tokens=3, temperature=0.7, n=2, chat_template="qwen2vl")
    distill_rollouts(PROBLEMS, tiny_model_dir, out, cfg, progress=False)
    assert _header(out)["identity"]["temperature"] == 0.7 and header_path(out).name == "rollouts.run.json"
    with pytest.raises(RunMismatchError, match="temperature: 0.7 -> 0.9"):
        distill_rollouts(PROBLEMS, tiny_model_dir, out, cfg.replace(temperature=0.9), progress=False)
    def run(force: bool = False):
        return distill(PROBLEMS, DistillConfig(problems="-", out=str(out), teacher=str(tiny_model_dir),
                                               generate=cfg.replace(seed=1), grade=GradeConfig(workers=0),
                                               progress=False, force=force))

    with pytest.raises(RunMismatchError, match="seed: 0 -> 1"):
        run()
    with pytest.warns(UserWarning, match="as forced"):
        result = run(force=True)
    assert result["rollout"]["missing"] == 0 and _header(out)["identity"]["seed"] == 1


def test_eval_names_the_nested_setting_that_differs(tmp_path):
    """`virgo eval` keeps its own run.json, compared by the same code: a decoding change is named by its key."""
    info = {"benchmark": "b", "split": "test", "model": "m", "generate": {"temperature": 0.0, "n": 1},
            "ablation": None}
    prepare_run(tmp_path, PROBLEMS, info)
    with pytest.raises(RunMismatchError) as ei:
        prepare_run(tmp_path, PROBLEMS, {**info, "generate": {"temperature": 0.7, "n": 1}})
    assert f"{tmp_path} already holds a different run (generate.temperature: 0.0 -> 0.7)" in str(ei.value)
