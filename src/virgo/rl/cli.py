"""`virgo rl`: GRPO after SFT with the grader as the reward; flags, YAML recipes and overrides from RLConfig."""

from __future__ import annotations

from virgo.rl.config import RLConfig, available_recipes, resolve_recipe
from virgo.train.cli import check_run_inputs, launch_or_fail, recipe_command
from virgo.train.launch import RL


def rl_cmd(cfg: RLConfig, *, dry_run: bool = False) -> None:
    check_run_inputs(cfg, dry_run=dry_run, model_hint="an SFT output dir, a hub id or tiny:xs",
                     data_hint="no problems: pass --train-files FILE.jsonl (Problem records; repeatable) or "
                               "train_files=[a.jsonl]")
    launch_or_fail(cfg, dry_run=dry_run, stage=RL)


rl = recipe_command("rl", RLConfig, rl_cmd, available=available_recipes, resolve=resolve_recipe,
                    help="""GRPO of a Qwen VL model after SFT, with Virgo's grader as a verifiable reward.

Built on TRL's GRPOTrainer: every GRPOConfig / TrainingArguments option is a flag below (num_generations = the
group size, beta = the KL coefficient, epsilon = the clip range, learning_rate, max_completion_length, temperature,
max_steps, use_vllm / vllm_mode ...). Prompts are Problem records, visual and text-only mixed in one batch; images
go through the processor as in SFT; the vision tower is frozen as in SFT; full fine-tuning or LoRA. Rewards:
accuracy (virgo.grade, in worker processes with a time limit, the grade section's settings), format (thought
closed, one final answer), and an optional thinking-budget term; each is logged (train_log.jsonl, TensorBoard)
with accuracy, format rate, thought tokens, KL, the clip fraction and tokens/s (prompt and completion tokens per
second of whole GRPO steps: generation, scoring, update). Running the same command again resumes from the last
checkpoint. Packaged recipes: --list (tiny-cpu runs here; qwen2vl-7b-grpo is for 8 GPUs with vLLM).""")
