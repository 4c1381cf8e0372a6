"""Training configs: every shipped recipe and launch config loads and validates; precedence and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from virgo.train.config import (
    LAUNCHES, ConfigError, TrainConfig, available_recipes, load_config, load_launch_config, recipes_dir,
    resolve_launch, resolve_recipe,
)
from virgo.train.launch import LaunchPlan, build_command

REPO = Path(__file__).resolve().parents[1]


def test_every_shipped_recipe_loads_and_validates():
    names = available_recipes()
    assert {"tiny-cpu", "qwen2vl-72b-virgo", "qwen2vl-7b-virgo"} <= set(names)
    for name in names:
        cfg = load_config(name)
        assert isinstance(cfg, TrainConfig)
        assert cfg.model_name_or_path
        assert cfg.launch in LAUNCHES
        for f in cfg.train_files:  # shipped data paths exist (the paper recipes ship none)
            assert Path(f).is_file(), f


@pytest.mark.parametrize("name,gpus", [("qwen2vl-72b-virgo", 64), ("qwen2vl-7b-virgo", 16)])
def test_paper_recipes_carry_the_papers_values(name, gpus):
    cfg = load_config(name)
    assert cfg.finetuning_type == "full" and cfg.freeze_vision_tower
    assert cfg.learning_rate == pytest.approx(7e-6)
    assert cfg.num_train_epochs == 10 and cfg.max_steps == -1
    assert gpus * cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps == 128
    assert (cfg.lr_scheduler_type, cfg.warmup_ratio, cfg.bf16) == ("cosine", 0.1, True)
    assert cfg.cutoff_len == 32768 and cfg.gradient_checkpointing
    assert cfg.save_strategy == "epoch" and cfg.save_total_limit is None  # epoch 5 must still be there
    assert cfg.image_max_pixels == 512 * 512
    assert cfg.launch == "zero3"
    assert (cfg.per_device_train_batch_size, cfg.gradient_accumulation_steps) == ((1, 2) if gpus == 64 else (2, 4))
    assert cfg.expected_global_batch == cfg.global_batch(gpus) == 128 and cfg.global_batch_warning(gpus) is None
    assert cfg.chat_template == "qwen2vl"


def test_a_launch_that_misses_the_papers_global_batch_warns_with_the_fix():
    cfg = load_config("qwen2vl-7b-virgo")
    warning = cfg.global_batch_warning(8)  # the old README's `-n 8`: 8 x 2 x 4 = 64
    assert warning.startswith("global batch 64 = 8 process(es) x 2 per device x 4 accumulation")
    assert "written for a global batch of 128" in warning
    assert "launch 16 processes" in warning and "gradient_accumulation_steps=8" in warning
    assert load_config("qwen2vl-7b-virgo", ["gradient_accumulation_steps=8"]).global_batch_warning(8) is None
    assert load_config("tiny-cpu").global_batch_warning(3) is None  # no expected_global_batch: no check


def test_train_dry_run_states_the_global_batch_before_launching():
    from typer.testing import CliRunner

    from virgo.cli import app

    args = ["train", "--config", "qwen2vl-7b-virgo", "--launch", "ddp", "--dry-run", "-o", "out"]
    short = CliRunner().invoke(app, [*args, "-n", "8"])
    assert short.exit_code == 0, short.output
    assert "global batch 64 = 8 process(es)" in short.output and "WARNING: global batch 64" in short.output
    assert short.output.index("WARNING") < short.output.index("launching:")  # before any rank starts
    right = CliRunner().invoke(app, [*args, "-n", "16"])
    assert "global batch 128 = 16 process(es)" in right.output and "WARNING" not in right.output


def test_chat_template_is_checked_when_the_config_loads(tmp_path):
    custom = tmp_path / "mine.jinja"
    custom.write_text("{% for m in messages %}{{ m['role'] }}{% endfor %}")
    assert load_config(None, [f"chat_template={custom}"]).chat_template == str(custom)
    with pytest.raises(ConfigError, match="chat_template: unknown chat template 'qwen3'"):
        load_config(None, ["chat_template=qwen3"])


def test_repo_recipes_link_is_the_packaged_directory():
    # `recipes/` at the repository root is the packaged directory, so paths and names find the same files.
    assert (REPO / "recipes" / "tiny-cpu.yaml").resolve() == (recipes_dir() / "tiny-cpu.yaml").resolve()
    assert resolve_recipe(REPO / "recipes" / "tiny-cpu.yaml") == REPO / "recipes" / "tiny-cpu.yaml"
    assert resolve_recipe("tiny-cpu").resolve() == (REPO / "recipes" / "tiny-cpu.yaml").resolve()


@pytest.mark.parametrize("name", LAUNCHES)
def test_launch_configs_validate_with_accelerate(name):
    """Each launch config goes through accelerate's own parser and validation, and builds a multi-node env."""
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    path = resolve_launch(name)
    assert load_launch_config(name)["distributed_type"] in {"MULTI_GPU", "DEEPSPEED", "FSDP"}
    ClusterConfig.from_yaml_file(str(path))  # unknown keys are errors there
    args = launch_command_parser().parse_args([
        "--config_file", str(path), "--num_processes", "16", "--num_machines", "2", "--machine_rank", "1",
        "--main_process_ip", "10.0.0.1", "-m", "virgo.train.sft", "--config", "tiny-cpu"])
    args, defaults, _ = _validate_launch_command(args)
    if name == "zero3":
        assert args.use_deepspeed
        # accelerate's launcher sets this before building the DeepSpeed env; mirror it.
        args.deepspeed_fields_from_accelerate_config = ",".join([*defaults.deepspeed_config, "mixed_precision"])
        cmd, env = prepare_deepspeed_cmd_env(args)
        assert cmd is None  # the "standard" multi-node launcher: torchrun on each node, no pdsh
        assert env["ACCELERATE_DEEPSPEED_ZERO_STAGE"] == "3"
        ds = json.loads((path.parent / "ds_z3.json").read_text())
        assert ds["zero_optimization"]["stage"] == 3
        assert ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    else:
        env = prepare_multi_gpu_env(args)
        if name == "fsdp2":
            assert env["ACCELERATE_USE_FSDP"] == "true" and env["FSDP_VERSION"] == "2"
            assert env["FSDP_STATE_DICT_TYPE"] == "FULL_STATE_DICT"
        else:
            assert args.multi_gpu


def test_precedence_defaults_yaml_cli(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_name_or_path: m\nbf16: true\nmax_steps: 5\nlearning_rate: 7e-6\n"
                      "train_files: [d/a.jsonl]\nsystem: hello\n")
    cfg = load_config(recipe)
    assert cfg.bf16 is True and cfg.max_steps == 5 and cfg.learning_rate == 7e-6  # '7e-6' is a str to YAML 1.1
    assert cfg.weight_decay == TrainConfig().weight_decay  # default kept
    assert cfg.train_files == [str((tmp_path / "d" / "a.jsonl").resolve())]  # relative to the recipe
    cfg = load_config(recipe, ["bf16=false", "max_steps=0", "system=null", "warmup_ratio=0", "train_files=x.jsonl",
                               "--lora-rank=8"])
    assert cfg.bf16 is False and cfg.max_steps == 0 and cfg.system is None and cfg.warmup_ratio == 0.0
    assert cfg.lora_rank == 8
    # YAML 1.2 booleans: `no` is the string transformers expects, not False.
    recipe.write_text("save_strategy: no\n")
    assert load_config(recipe).save_strategy == "no"
    assert load_config(recipe, ["save_strategy=epoch"]).save_strategy == "epoch"
    assert cfg.train_files == [str(Path("x.jsonl").resolve())]  # relative to the current directory


def test_unknown_and_bad_keys_are_errors(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_name_or_path: m\nlearning_rat: 1e-5\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: unknown key 'learning_rat' \(did you mean 'learning_rate'\?\)"):
        load_config(recipe)
    with pytest.raises(ConfigError, match="command line: unknown key 'epochs'"):
        load_config(None, ["epochs=3"])
    with pytest.raises(ConfigError, match="bf16 must be true or false"):
        load_config(None, ["bf16=yes please"])
    with pytest.raises(ConfigError, match="max_steps must be an integer"):
        load_config(None, ["max_steps=1.5"])
    with pytest.raises(ConfigError, match="overlong='cut'"):
        load_config(None, ["overlong=cut"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(None, ["bf16"])
    with pytest.raises(ConfigError, match="no recipe 'nope'"):
        load_config("nope")


def test_launch_commands():
    cpu = build_command(LaunchPlan(num_processes=2, cuda=False), "tiny-cpu", ["max_steps=6"])
    assert cpu[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert cpu[-5:] == ["-m", "virgo.train.sft", "--config", "tiny-cpu", "max_steps=6"]
    gpu = build_command(LaunchPlan(num_processes=64, launch="zero3", num_machines=8, machine_rank=3,
                                   main_process_ip="10.0.0.1", cuda=True), "qwen2vl-72b-virgo", [])
    assert gpu[1:3] == ["-m", "accelerate.commands.launch"]
    assert gpu[gpu.index("--config_file") + 1] == str(resolve_launch("zero3"))
    for flag, value in [("--num_processes", "64"), ("--num_machines", "8"), ("--machine_rank", "3"),
                        ("--main_process_ip", "10.0.0.1")]:
        assert gpu[gpu.index(flag) + 1] == value
    with pytest.raises(ValueError, match="main-process-ip"):
        build_command(LaunchPlan(num_processes=16, num_machines=2, cuda=True), "x", [])
    with pytest.raises(ValueError, match="on CPU only --launch ddp or zero3"):
        build_command(LaunchPlan(num_processes=2, launch="fsdp2", cuda=False), "x", [])
