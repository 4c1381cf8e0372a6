"""`virgo rl`: GRPO after SFT with the grader as the reward; flags, YAML recipes and overrides from RLConfig."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import click

from virgo.config.cli import command, fail
from virgo.rl.config import RLConfig, available_recipes, dump_config, resolve_recipe


def in_process(cfg: RLConfig) -> bool:
    return cfg.num_processes == 1 and cfg.num_machines == 1 and cfg.launch == "ddp"


def launch(cfg: RLConfig, *, dry_run: bool = False) -> int:
    """Run in this process, or start the ranks as `virgo train` does (torchrun on CPU, accelerate on GPUs), each
    reading the resolved config written to ``OUTPUT_DIR/.launch/``; returns the exit code."""
    from virgo.train.launch import build_command

    if in_process(cfg):
        if dry_run:
            click.echo("in-process: virgo.rl.grpo.train(cfg)")
            return 0
        from virgo.rl.grpo import train

        train(cfg)
        return 0
    config_file = Path(cfg.output_dir) / ".launch" / "rl_config.yaml"
    cmd = build_command(cfg, config_file, module="virgo.rl.grpo")
    click.echo(f"launching: {shlex.join(cmd)}")
    if dry_run:
        return 0
    from virgo.train.models import resolve_model

    resolve_model(cfg.model_name_or_path)  # build a tiny model once, before the ranks
    config_file.parent.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, config_file)
    return subprocess.call(cmd)


def rl_cmd(cfg: RLConfig, *, dry_run: bool = False, list_recipes: bool = False) -> None:
    if not cfg.output_dir or cfg.output_dir == "trainer_output":
        fail("no output directory: pass --output-dir DIR (or output_dir=DIR)")
    if not cfg.model_name_or_path:
        fail("no model: pass --model-name-or-path (an SFT output dir, a hub id or tiny:xs) or use a recipe that sets "
             "it")
    if not cfg.train_files and not dry_run:
        fail("no problems: pass --train-files FILE.jsonl (Problem records; repeatable) or train_files=[a.jsonl]")
    try:
        code = launch(cfg, dry_run=dry_run)
    except ValueError as e:
        fail(str(e))
    raise SystemExit(code)


def _list(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo("\n".join(available_recipes()))
        ctx.exit()


rl = command("rl", RLConfig, rl_cmd, recipes=lambda name: resolve_recipe(name), extra=[
    click.Option(["dry_run", "--dry-run"], is_flag=True, help="Print the resolved launch command and exit."),
    click.Option(["list_recipes", "--list"], is_flag=True, is_eager=True, expose_value=False, callback=_list,
                 help="List the packaged RL recipes and exit."),
], help="""GRPO of a Qwen VL model after SFT, with Virgo's grader as a verifiable reward.

Built on TRL's GRPOTrainer: every GRPOConfig / TrainingArguments option is a flag below (num_generations = the
group size, beta = the KL coefficient, epsilon = the clip range, learning_rate, max_completion_length, temperature,
max_steps, use_vllm / vllm_mode ...). Prompts are Problem records, visual and text-only mixed in one batch; images
go through the processor as in SFT; the vision tower is frozen as in SFT; full fine-tuning or LoRA. Rewards:
accuracy (virgo.grade, in worker processes with a time limit, the grade section's settings), format (thought
closed, one final answer), and an optional thinking-budget term; each is logged (train_log.jsonl, TensorBoard)
with accuracy, format rate, thought tokens, KL and the clip fraction. Running the same command again resumes from
the last checkpoint. Packaged recipes: --list (tiny-cpu runs here; qwen2vl-7b-grpo is for 8 GPUs with vLLM).""")
