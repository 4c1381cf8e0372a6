"""`virgo train`: SFT of a Qwen VL model on long-thought data; flags, YAML recipes and overrides from TrainConfig."""

from __future__ import annotations

import click

from virgo.config.cli import command, fail
from virgo.train.config import TrainConfig, available_recipes, resolve_recipe


def train_cmd(cfg: TrainConfig, *, dry_run: bool = False, list_recipes: bool = False) -> None:
    from virgo.train.launch import run

    if not cfg.output_dir or cfg.output_dir == "trainer_output":
        fail("no output directory: pass --output-dir DIR (or output_dir=DIR)")
    if not cfg.model_name_or_path:
        fail("no model: pass --model-name-or-path (a directory, hub id or tiny:xs) or use a recipe that sets it")
    if not cfg.train_files and not dry_run:
        fail("no training data: pass --train-files FILE.jsonl (repeatable) or train_files=[a.jsonl,b.jsonl]")
    try:
        code = run(cfg, dry_run=dry_run)
    except ValueError as e:
        fail(str(e))
    raise SystemExit(code)


def _list(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo("\n".join(available_recipes()))
        ctx.exit()


train = command("train", TrainConfig, train_cmd, recipes=lambda name: resolve_recipe(name), extra=[
    click.Option(["dry_run", "--dry-run"], is_flag=True, help="Print the resolved launch command and exit."),
    click.Option(["list_recipes", "--list"], is_flag=True, is_eager=True, expose_value=False, callback=_list,
                 help="List the packaged recipes and exit."),
], help="""Fine-tune a vision-language model on long-thought data (paper section 2.1.2).

Full fine-tuning (or LoRA) with the vision tower frozen; loss on the assistant response only. The config is TRL's
SFTConfig (every TrainingArguments option is a flag below) plus Virgo's fields; LLaMA-Factory names (cutoff_len,
template, warmup_ratio, val_size, finetuning_type, lora_rank, lora_target) are accepted. Writes a HF model dir
(safetensors, processor, chat template), checkpoint-N/, train_config.yaml, run_info.json, train_log.jsonl,
TensorBoard logs and loss.png. The global batch is processes x per-device batch x accumulation; a recipe's
expected_global_batch is checked before launching. Running the same command again resumes from the last
checkpoint (resume_from_checkpoint=auto).""")
