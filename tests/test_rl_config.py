"""`virgo rl`'s config: TRL's GRPOConfig plus Virgo's fields, loaded like `virgo train`'s; packaged recipes; the
resolved config written for the ranks reloads in any world size; the command line."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from click.testing import CliRunner

from virgo.cli import app
from virgo.config import ConfigError
from virgo.rl.config import RLConfig, available_recipes, config_yaml, load_config
from virgo.train.config import TrainConfig
from virgo.train.tuning import LaunchOptions, ModelTuning


def test_packaged_recipes_load():
    assert {"tiny-cpu", "qwen2vl-7b-grpo"} <= set(available_recipes())
    tiny = load_config("tiny-cpu")
    assert (tiny.num_generations, tiny.beta, tiny.epsilon, tiny.use_vllm) == (4, 0.04, 0.2, False)
    assert tiny.train_files and tiny.train_files[0].endswith("recipes/data/tiny-longthought/train.jsonl")
    big = load_config("qwen2vl-7b-grpo")  # a GPU recipe still loads (and is checked) on a CPU-only machine
    assert big.use_vllm and big.vllm_mode == "colocate" and big.finetuning_type == "lora" and big.bf16
    assert big.grade.workers == 4 and big.reward.format_weight == 0.5
    assert big.prompts_per_step(8) * big.num_generations == 8 * 8 * 4


def test_shared_fields_are_declared_once():
    shared = {f.name for f in dataclasses.fields(ModelTuning)} | {f.name for f in dataclasses.fields(LaunchOptions)}
    for cls in (TrainConfig, RLConfig):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        assert shared <= fields.keys()
        assert fields["lora_rank"] is next(f for f in dataclasses.fields(ModelTuning) if f.name == "lora_rank")
    assert RLConfig().grade.workers == 2  # a pool per rank: not every core on every rank


def test_resolved_config_reloads_in_another_world_size(tmp_path):
    cfg = load_config("tiny-cpu", ["steps_per_generation=2", "per_device_train_batch_size=4"])
    assert (cfg.generation_batch_size, cfg.steps_per_generation) == (8, 2)  # derived for one process
    f = tmp_path / "r.yaml"
    f.write_text(config_yaml(cfg))
    data = yaml.safe_load(f.read_text())
    assert data["steps_per_generation"] == 2 and "generation_batch_size" not in data
    again = load_config(f)
    assert again.generation_batch_size == 8 and again.reward == cfg.reward and again.grade == cfg.grade
    # a copy (dataclasses.replace) carries both derived values: accepted when they agree, refused when not
    assert dataclasses.replace(cfg).generation_batch_size == 8
    with pytest.raises(ValueError, match="contradicts"):
        dataclasses.replace(cfg, generation_batch_size=12)


@pytest.mark.parametrize(("overrides", "message"), [
    (["reward_weights=[1.0, 0.5]"], "reward.accuracy_weight"),
    (["reward.length_weight=0.5"], "needs thinking_budget"),
    (["thinking_budget=100", "budget_margin=100"], "smaller than thinking_budget"),
    (["accuracy_weight=0", "format_weight=0"], "nothing to train on"),
    (["num_generations=1"], "at least 2 generations"),
    (["chat_template=nope"], "chat_template"),
    (["launch=mpi"], "launch"),
])
def test_bad_configs_are_one_clear_error(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny-cpu", overrides)


def test_command_line(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["rl", "--list"])
    assert r.exit_code == 0 and "tiny-cpu" in r.output and "qwen2vl-7b-grpo" in r.output
    r = runner.invoke(app, ["rl", "--config", "tiny-cpu", "--num-generations", "2", "--beta", "0",
                            "--format-weight", "0.25", "--grade-timeout", "3", "--print-config"])
    assert r.exit_code == 0, r.output
    f = tmp_path / "p.yaml"
    f.write_text(r.output)
    cfg = load_config(f)
    assert (cfg.num_generations, cfg.beta, cfg.reward.format_weight, cfg.grade.grade_timeout) == (2, 0.0, 0.25, 3.0)
    r = runner.invoke(app, ["rl", "--config", "tiny-cpu", "-o", str(tmp_path / "o"), "-n", "2", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "torch.distributed.run" in r.output and "--nproc_per_node=2" in r.output
    assert "-m virgo.rl.grpo --config" in r.output and "rl_config.yaml" in r.output
    r = runner.invoke(app, ["rl", "--config", "tiny-cpu"])
    assert r.exit_code == 2 and "no output directory" in r.output
    r = runner.invoke(app, ["rl", "--config", "tiny-cpu", "-o", str(tmp_path / "o"), "train_files=[]"])
    assert r.exit_code == 2 and "no problems" in r.output


def test_launches_that_would_hang_are_refused():
    from types import SimpleNamespace

    from virgo.records import Problem
    from virgo.rl.grpo import check_launch

    mixed = [Problem(id="t", question="q", answer="1"), Problem(id="v", question="q", answer="1", images=["a.png"])]
    visual = mixed[1:]

    def args(**kw):
        return SimpleNamespace(**{"world_size": 2, "log_multimodal": False, "launch": "ddp", "deepspeed": None, **kw})

    check_launch(args(), mixed)  # DDP with mixed prompts: fine
    check_launch(args(world_size=1, log_multimodal=True, launch="zero3"), mixed)  # one process: nothing to pair
    check_launch(args(launch="zero3"), visual)  # every micro-batch has an image
    with pytest.raises(ValueError, match="log_multimodal"):
        check_launch(args(log_multimodal=True), mixed)
    # ZeRO-3 / FSDP2 with text-only prompts: the dummy tower run (tests/test_rl_mixed.py) pairs the ranks
    check_launch(args(launch="zero3"), mixed)
    check_launch(args(launch="fsdp2"), mixed, cuda=True)
    with pytest.raises(ValueError, match="fsdp2 needs GPUs"):  # accelerate's FSDP2 plugin; unsharded on CPU
        check_launch(args(launch="fsdp2"), visual, cuda=False)
