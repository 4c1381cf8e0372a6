"""Training configs: every shipped recipe and launch config loads and validates; precedence and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from virgo.train.config import (
    LAUNCHES,
    ConfigError,
    TrainConfig,
    available_recipes,
    load_config,
    load_launch_config,
    recipes_dir,
    resolve_launch,
    resolve_recipe,
)
from virgo.train.launch import build_command

REPO = Path(__file__).resolve().parents[1]


# Each paper-style recipe: its GPU count (global batch 128) and the family its name's prefix stands for.
PAPER_RECIPES = [("qwen2vl-72b-virgo", 64), ("qwen2vl-7b-virgo", 16), ("qwen2_5vl-72b-virgo", 64),
                 ("qwen2_5vl-7b-virgo", 16), ("qwen3vl-32b-virgo", 32), ("qwen3vl-8b-virgo", 16)]
RECIPE_FAMILY = {"qwen2vl": "qwen2_vl", "qwen2_5vl": "qwen2_5_vl", "qwen3vl": "qwen3_vl"}


def test_every_shipped_recipe_loads_and_validates():
    names = available_recipes()
    assert {"tiny-cpu", *(name for name, _ in PAPER_RECIPES)} <= set(names)
    for name in names:
        cfg = load_config(name)
        assert isinstance(cfg, TrainConfig)
        assert cfg.model_name_or_path
        assert cfg.launch in LAUNCHES
        for f in cfg.train_files:  # shipped data paths exist (the paper recipes ship none)
            assert Path(f).is_file(), f


@pytest.mark.parametrize("name,gpus", PAPER_RECIPES)
def test_paper_recipes_carry_the_papers_values(name, gpus):
    """Every family's 7B-class and largest recipe carries the paper's hyperparameters, its own model and template."""
    from virgo.modeling.family import get_family

    cfg = load_config(name)
    family = get_family(RECIPE_FAMILY[name.split("-")[0]])
    assert cfg.model_name_or_path.startswith(f"Qwen/{family.title}-") and cfg.model_name_or_path.endswith("-Instruct")
    assert cfg.chat_template == family.chat_template
    assert cfg.finetuning_type == "full" and cfg.freeze_vision_tower and cfg.train_merger
    assert cfg.learning_rate == pytest.approx(7e-6)
    assert cfg.num_train_epochs == 10 and cfg.max_steps == -1
    assert gpus * cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps == 128
    assert (cfg.lr_scheduler_type, cfg.warmup_steps, cfg.bf16) == ("cosine", 0.1, True)
    assert cfg.max_length == 32768 and cfg.activation_checkpointing
    assert cfg.save_strategy == "epoch" and cfg.save_total_limit is None  # epoch 5 must still be there
    assert cfg.image_max_pixels == 512 * 512
    assert cfg.launch == "zero3"
    assert cfg.per_device_train_batch_size == (2 if gpus == 16 else 1)
    # the released config's dev split, a dev loss per epoch, and the best epoch recorded
    assert (cfg.val_size, cfg.eval_strategy, cfg.metric_for_best_model) == (0.001, "epoch", "eval_loss")
    assert cfg.per_device_eval_batch_size == cfg.per_device_train_batch_size  # 32K-token samples: no batch of 8
    assert cfg.expected_global_batch == cfg.global_batch(gpus) == 128 and cfg.global_batch_warning(gpus) is None


def test_a_launch_that_misses_the_papers_global_batch_warns_with_the_fix():
    cfg = load_config("qwen2vl-7b-virgo")
    warning = cfg.global_batch_warning(8)  # the old README's `-n 8`: 8 x 2 x 4 = 64
    assert warning.startswith("global batch 64 = 8 process(es) x 2 per device x 4 accumulation")
    assert "written for a global batch of 128" in warning
    assert "launch 16 processes" in warning and "gradient_accumulation_steps=8" in warning
    assert load_config("qwen2vl-7b-virgo", ["gradient_accumulation_steps=8"]).global_batch_warning(8) is None
    assert load_config("tiny-cpu").global_batch_warning(3) is None  # no expected_global_batch: no check


def test_torch_compile_with_packing_warns():
    """Whole-model torch.compile recompiles on every new packed row (13x slower in benchmarks/train_packing.py)."""
    warning = load_config(None, ["packing=true", "torch_compile=true"]).compile_warning()
    assert warning and "keeps recompiling" in warning and "set torch_compile=false" in warning
    assert load_config(None, ["packing=true"]).compile_warning() is None
    assert load_config(None, ["torch_compile=true"]).compile_warning() is None  # padded batches: left alone


def test_linear_cross_entropy_needs_the_targets_and_no_logits():
    """Its targets are logits_at_labels' shift_labels, and the model returns losses where logits would be."""
    assert load_config(None, ["linear_cross_entropy=true"]).linear_cross_entropy
    for off in ("logits_at_labels=false", "prediction_loss_only=false"):
        with pytest.raises(ConfigError, match="linear_cross_entropy needs logits_at_labels=true"):
            load_config(None, ["linear_cross_entropy=true", off])


def test_train_dry_run_states_the_global_batch_before_launching():
    from click.testing import CliRunner

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
    assert load_config(None).chat_template == "auto"  # the model family's template
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
    assert cfg.bf16 is False and cfg.max_steps == 0 and cfg.system is None and cfg.warmup_steps == 0.0
    assert cfg.lora_rank == 8
    # YAML 1.2 booleans: `no` is the string transformers expects, not False.
    recipe.write_text("save_strategy: no\n")
    assert load_config(recipe).save_strategy == "no"
    assert load_config(recipe, ["save_strategy=epoch"]).save_strategy == "epoch"
    assert cfg.train_files == [str(Path("x.jsonl").resolve())]  # relative to the current directory


def test_unknown_and_bad_keys_are_errors(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_name_or_path: m\nlearning_rat: 1e-5\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: unknown key 'learning_rat'; did you mean 'learning_rate'\?"):
        load_config(recipe)
    with pytest.raises(ConfigError, match="command line: unknown key 'epochs'"):
        load_config(None, ["epochs=3"])
    with pytest.raises(ConfigError, match="bf16: must be true or false"):
        load_config(None, ["bf16=yes please"])
    with pytest.raises(ConfigError, match="max_steps: must be an integer"):
        load_config(None, ["max_steps=1.5"])
    with pytest.raises(ConfigError, match="overlong: must be one of drop, truncate, got 'cut'"):
        load_config(None, ["overlong=cut"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(None, ["bf16"])
    with pytest.raises(ConfigError, match="no recipe 'nope'"):
        load_config("nope")


def test_launch_commands(tmp_path):
    cfg = load_config("tiny-cpu", ["num_processes=2", f"output_dir={tmp_path}"])
    cpu = build_command(cfg, "R.yaml", cuda=False)
    assert cpu[1:4] == ["-m", "torch.distributed.run", "--nproc_per_node=2"] and "--standalone" in cpu
    assert cpu[-4:] == ["-m", "virgo.train.sft", "--config", "R.yaml"]
    nodes = build_command(load_config("tiny-cpu", ["num_processes=2", "num_machines=2", "machine_rank=1",
                                                   "main_process_ip=127.0.0.1"]), "R.yaml", cuda=False)
    assert "--nnodes=2" in nodes and "--node_rank=1" in nodes and "--master_addr=127.0.0.1" in nodes
    assert "--nproc_per_node=1" in nodes
    gpu = build_command(load_config("qwen2vl-72b-virgo", ["num_processes=64", "num_machines=8", "machine_rank=3",
                                                          "main_process_ip=10.0.0.1"]), "R.yaml", cuda=True)
    assert gpu[1:3] == ["-m", "accelerate.commands.launch"]
    assert gpu[gpu.index("--config_file") + 1] == str(resolve_launch("zero3"))
    for flag, value in [("--num_processes", "64"), ("--num_machines", "8"), ("--machine_rank", "3"),
                        ("--main_process_ip", "10.0.0.1")]:
        assert gpu[gpu.index(flag) + 1] == value
    with pytest.raises(ValueError, match="main-process-ip"):
        build_command(load_config("tiny-cpu", ["num_processes=16", "num_machines=2"]), "x", cuda=True)


def test_llamafactory_yaml_keys_are_accepted(tmp_path):
    """A LLaMA-Factory recipe's own names (aliases, documented in TrainConfig) load as the same config."""
    lf = tmp_path / "lf.yaml"
    lf.write_text("model_name_or_path: m\ncutoff_len: 4096\ntemplate: qwen2vl\nwarmup_ratio: 0.05\n"
                  "torch_dtype: bfloat16\nval_size: 0.001\nfinetuning_type: lora\nlora_rank: 8\n"
                  "gradient_checkpointing: true\n")
    cfg = load_config(lf)
    assert (cfg.max_length, cfg.chat_template, cfg.warmup_steps, cfg.dtype) == (4096, "qwen2vl", 0.05, "bfloat16")
    assert (cfg.val_size, cfg.finetuning_type, cfg.lora_rank) == (0.001, "lora", 8)
    assert cfg.activation_checkpointing is True


def test_the_resolved_config_round_trips(tmp_path):
    from virgo.train.config import dump_config

    cfg = load_config("qwen2vl-7b-virgo", [f"output_dir={tmp_path}", "report_to=none", "eval_strategy=epoch"])
    dump_config(cfg, tmp_path / "c.yaml")
    again = load_config(tmp_path / "c.yaml")
    for name in ("learning_rate", "max_length", "eval_strategy", "report_to", "warmup_steps", "output_dir",
                 "expected_global_batch", "activation_checkpointing", "launch"):
        assert getattr(again, name) == getattr(cfg, name), name


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
def test_fsdp2_on_gpus_wraps_the_familys_units(family, tmp_path, monkeypatch):
    """`--launch fsdp2` on GPUs: accelerate gets the family's vision blocks, vision tower and decoder layers as
    its wrap classes (read from the model's config on the meta device), and accepts them."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import prepare_multi_gpu_env

    from virgo.modeling.family import get_family
    from virgo.modeling.tiny import make_tiny_model

    monkeypatch.setenv("VIRGO_CACHE", str(tmp_path / "cache"))
    model = make_tiny_model(tmp_path / "m", family=family)
    cfg = load_config(None, [f"model_name_or_path={model}", "num_processes=8", "launch=fsdp2",
                             f"output_dir={tmp_path}"])
    cmd = build_command(cfg, "R.yaml", cuda=True)
    classes = cmd[cmd.index("--fsdp_transformer_layer_cls_to_wrap") + 1].split(",")
    fam = get_family(family)
    assert classes[0] in fam.vision_block_classes and classes[-1] in fam.decoder_layer_classes
    assert len(classes) == 3  # ... and the vision tower's own class between them
    args = launch_command_parser().parse_args(cmd[3:])
    args, _, _ = _validate_launch_command(args)
    env = prepare_multi_gpu_env(args)
    assert env["FSDP_TRANSFORMER_CLS_TO_WRAP"] == ",".join(classes) and env["FSDP_VERSION"] == "2"


def test_dev_set_and_selection_rules():
    base = ["model_name_or_path=m", "output_dir=o"]
    with pytest.raises(ConfigError, match="give val_size or eval_files, not both"):
        load_config(None, [*base, "val_size=0.1", "eval_files=[a.jsonl]"])
    with pytest.raises(ConfigError, match="metric_for_best_model='eval_loss' needs evaluations"):
        load_config(None, [*base, "metric_for_best_model=eval_loss"])
    with pytest.raises(ConfigError, match="gen_eval_benchmark runs at each evaluation, which needs a dev set"):
        load_config(None, [*base, "gen_eval_benchmark=probs.jsonl"])
    with pytest.raises(ConfigError, match="a registered benchmark needs gen_eval_data_dir"):
        load_config(None, [*base, "val_size=2", "gen_eval_benchmark=mathvision"])
    with pytest.raises(ConfigError, match="comes from the generation-based evaluation"):
        load_config(None, [*base, "val_size=2", "metric_for_best_model=eval_accuracy"])
    cfg = load_config(None, [*base, "val_size=2", "gen_eval_benchmark=probs.jsonl", "metric_for_best_model=accuracy"])
    assert cfg.greater_is_better is True  # transformers: any metric but a loss is maximised


def test_loggers_must_be_installed():
    import importlib.util

    from virgo.train.runtime import check_loggers

    check_loggers(["tensorboard"])  # a dependency: always there
    if importlib.util.find_spec("wandb") is None:  # W&B is optional (not installed on the CI machine)
        with pytest.raises(ValueError, match=r"report_to=wandb: the wandb package is not installed \(pip install"):
            check_loggers("wandb")
    else:
        check_loggers("wandb")
