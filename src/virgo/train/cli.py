"""`virgo train`: SFT of a Qwen2-VL-family model on long-thought data, from a recipe plus overrides."""

from __future__ import annotations

import typer


def train_cmd(
    overrides: list[str] = typer.Argument(
        None, metavar="[KEY=VALUE]...",
        help="Config overrides, e.g. learning_rate=1e-5 bf16=false train_files=\\[a.jsonl,b.jsonl]. Values are YAML "
             "(false, 0, null, lists); unknown keys are errors. Precedence: defaults < recipe < overrides."),
    config: str = typer.Option(
        None, "--config", "-c",
        help="Recipe: a YAML path, or a packaged name (tiny-cpu, qwen2vl-7b-virgo, qwen2vl-72b-virgo)."),
    num_processes: int = typer.Option(
        1, "--num-processes", "-n", min=1,
        help="Processes in total (over all machines). >1 on CPU runs torchrun + gloo; on GPUs accelerate launch."),
    launch: str = typer.Option(
        None, "--launch",
        help="Distributed backend: ddp, zero3 (DeepSpeed ZeRO-3) or fsdp2, or an accelerate config path. "
             "Default: the recipe's `launch` key."),
    max_steps: int = typer.Option(None, "--max-steps", help="Shortcut for max_steps=N (overrides epochs)."),
    output_dir: str = typer.Option(None, "--output-dir", "-o", help="Shortcut for output_dir=DIR."),
    num_machines: int = typer.Option(1, "--num-machines", min=1, help="Nodes in a multi-node GPU run."),
    machine_rank: int = typer.Option(0, "--machine-rank", min=0, help="This node's rank (0 .. num_machines-1)."),
    main_process_ip: str = typer.Option(None, "--main-process-ip", help="Address of the rank-0 node (multi-node)."),
    main_process_port: int = typer.Option(None, "--main-process-port", help="Port of the rank-0 node."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config / launch command and exit."),
    list_recipes: bool = typer.Option(False, "--list", help="List the packaged recipes and exit."),
) -> None:
    """Fine-tune a vision-language model on long-thought data (paper section 2.1.2).

    Full fine-tuning (or LoRA) with the vision tower frozen; loss on the assistant response only.

    Writes a HF model dir (safetensors, processor, chat template), checkpoint-N/, train_config.yaml,
    run_info.json (pre-flight report, trainable parameters per module, global batch), train_log.jsonl and loss.png.

    The global batch is processes x per-device batch x accumulation; a recipe's expected_global_batch (128 for
    the paper recipes) is checked against it before launching, with a loud warning when they differ.

    Running the same command again resumes from the last checkpoint (resume_from_checkpoint=auto).
    """
    from virgo.train.config import ConfigError, available_recipes, load_config
    from virgo.train.launch import LaunchPlan, run

    if list_recipes:
        typer.echo("\n".join(available_recipes()))
        raise typer.Exit()
    if config is None:
        raise typer.BadParameter("a recipe is required", param_hint="--config")
    extra = list(overrides or [])
    if max_steps is not None:
        extra.append(f"max_steps={max_steps}")
    if output_dir is not None:
        extra.append(f"output_dir={output_dir}")
    try:
        cfg = load_config(config, extra)
    except (ConfigError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e)) from None
    if not cfg.output_dir:
        raise typer.BadParameter("no output directory: pass --output-dir DIR (or output_dir=DIR)")
    plan = LaunchPlan(num_processes=num_processes, launch=launch or cfg.launch, num_machines=num_machines,
                      machine_rank=machine_rank, main_process_ip=main_process_ip,
                      main_process_port=main_process_port)
    try:
        code = run(plan, config, extra, dry_run=dry_run)
    except (ConfigError, ValueError) as e:
        raise typer.BadParameter(str(e)) from None
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("train", no_args_is_help=True)(train_cmd)
