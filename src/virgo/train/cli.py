"""`virgo train`: SFT of a Qwen VL model on long-thought data; flags, YAML recipes and overrides from TrainConfig."""

from __future__ import annotations

import click

from virgo.config.cli import command, fail
from virgo.train.config import TrainConfig, available_recipes, resolve_recipe


def check_run_inputs(cfg, *, dry_run: bool, model_hint: str, data_hint: str) -> None:
    """One line and exit 2 for what a training stage cannot start without."""
    if not cfg.output_dir or cfg.output_dir == "trainer_output":
        fail("no output directory: pass --output-dir DIR (or output_dir=DIR)")
    if not cfg.model_name_or_path:
        fail(f"no model: pass --model-name-or-path ({model_hint}) or use a recipe that sets it")
    if not cfg.train_files and not dry_run:
        fail(data_hint)


def launch_or_fail(cfg, *, dry_run: bool, stage=None) -> None:
    from virgo.train.launch import run

    try:
        code = run(cfg, dry_run=dry_run, stage=stage)
    except ValueError as e:
        fail(str(e))
    raise SystemExit(code)


def recipe_command(name: str, cls: type, run, *, available, resolve, help: str) -> click.Command:
    """A training stage's command: its config's flags plus --dry-run and --list (the packaged recipes)."""
    def _list(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        if value and not ctx.resilient_parsing:
            click.echo("\n".join(available()))
            ctx.exit()

    return command(name, cls, run, recipes=resolve, help=help, extra=[
        click.Option(["dry_run", "--dry-run"], is_flag=True, help="Print the resolved launch command and exit."),
        click.Option(["list_recipes", "--list"], is_flag=True, is_eager=True, expose_value=False, callback=_list,
                     help="List the packaged recipes and exit."),
    ])


def train_cmd(cfg: TrainConfig, *, dry_run: bool = False) -> None:
    check_run_inputs(cfg, dry_run=dry_run, model_hint="a directory, hub id or tiny:xs",
                     data_hint="no training data: pass --train-files FILE.jsonl (repeatable) or "
                               "train_files=[a.jsonl,b.jsonl]")
    launch_or_fail(cfg, dry_run=dry_run)


train = recipe_command("train", TrainConfig, train_cmd, available=available_recipes, resolve=resolve_recipe,
                       help="""Fine-tune a vision-language model on long-thought data (paper section 2.1.2).

Full fine-tuning (or LoRA) with the vision tower frozen; loss on the assistant response only. The config is TRL's
SFTConfig (every TrainingArguments option is a flag below) plus Virgo's fields; LLaMA-Factory names (cutoff_len,
template, warmup_ratio, val_size, finetuning_type, lora_rank, lora_target) are accepted. Writes a HF model dir
(safetensors, processor, chat template), checkpoint-N/, train_config.yaml, run_info.json, train_log.jsonl
(loss, lr, grad norm and tokens/s, padding excluded, per logged step), TensorBoard logs and loss.png. The
global batch is processes x per-device batch x accumulation; a recipe's expected_global_batch is checked before
launching. Running the same command again resumes from the last checkpoint (resume_from_checkpoint=auto).""")
