"""The RL config: TRL's ``GRPOConfig`` (and so transformers' ``TrainingArguments``) plus Virgo's fields.

As for SFT (`virgo.train.config`), one dataclass is the recipe, the flags and the Trainer's arguments: the GRPO
recipe keys are GRPOConfig's own fields (``num_generations`` = the group size, ``beta`` = the KL coefficient,
``epsilon`` = the clip range, ``learning_rate``, ``max_completion_length``, ``temperature``, ``max_steps``,
``use_vllm`` / ``vllm_mode`` ...). Virgo adds the model and training scope shared with SFT
(`virgo.train.tuning`), the Problem files, the reward weights (`RewardConfig`) and the grader's settings
(`virgo.grade.config.GradeConfig`, the same section `virgo grade` and `virgo eval` read, so the training reward and
the reported accuracy decide correctness the same way).

Recipes are found by name in the package's ``recipes/rl/`` (``virgo rl --config tiny-cpu``) or by path.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from trl import GRPOConfig

from virgo.config import ConfigError, load
from virgo.config.fields import opt, section
from virgo.grade.config import GradeConfig
from virgo.train.tuning import LaunchOptions, ModelTuning, RunDefaults

BATCHING = ("generation_batch_size", "steps_per_generation")  # GRPOConfig derives one from the other


@dataclass
class RewardConfig:
    """The reward terms and their weights. Every term is computed and logged (``rewards/<name>/mean|std``), even at
    weight 0; the weights decide what the policy is trained on."""

    accuracy_weight: float = opt(1.0, ge=0, help="Weight of the accuracy reward: 1 when the grader (the grade "
                                 "section: profile, bounds, worker processes with a time limit) says correct, else "
                                 "0 (wrong, no answer, truncated, or timed out).")
    format_weight: float = opt(0.5, ge=0, help="Weight of the format reward: 1 when the thought closed, the "
                                "solution is complete and holds exactly one closed \\boxed{} final answer, and the "
                                "model stopped on its own; else 0.")
    length_weight: float = opt(0.0, ge=0, help="Weight of the thinking-budget term (needs thinking_budget): 0 while "
                               "the thought is within budget - budget_margin tokens, falling linearly to -1 at the "
                               "budget and beyond (DAPO's soft overlong penalty, on thought tokens).")
    thinking_budget: int | None = opt(None, ge=1, help="Thought tokens the length term allows; null = no length "
                                      "term.")
    budget_margin: int = opt(0, ge=0, help="Tokens below thinking_budget where the length penalty starts (0 = a hard "
                             "step at the budget).")

    def validate(self) -> None:
        if self.length_weight > 0 and self.thinking_budget is None:
            raise ConfigError("length_weight > 0 needs thinking_budget (the thought tokens the length term allows)")
        if self.thinking_budget is not None and self.budget_margin >= self.thinking_budget:
            raise ConfigError("budget_margin must be smaller than thinking_budget")
        if self.accuracy_weight == 0 and self.format_weight == 0 and self.length_weight == 0:
            raise ConfigError("every reward weight is 0: nothing to train on")


@dataclass
class RLConfig(RunDefaults, GRPOConfig, ModelTuning, LaunchOptions):
    """Everything one GRPO run needs: Virgo's fields (below, and the model, tuning and launch options shared with
    `virgo train`), then every GRPOConfig / TrainingArguments field."""

    train_files: list[str] = opt([], path=True, help="JSONL files of Problem records (id, question, images, "
                                 "answer, choices, answer_type, meta), text-only and visual mixed freely; relative "
                                 "paths in a recipe are relative to the recipe.")
    max_samples: int | None = opt(None, ge=1, help="Use only the first N problems (after reading all files).")
    reward: RewardConfig = section(RewardConfig, help="Rewards")
    grade: GradeConfig = section(GradeConfig, factory=lambda: GradeConfig(workers=2), help="Grading (the accuracy "
                                 "reward; the same settings as virgo grade / eval). Each rank keeps its own pool of "
                                 "workers grading processes")

    # --- GRPO's recipe keys where Virgo's defaults differ from TRL's
    beta: float = opt(0.04, ge=0, help="KL coefficient (GRPO's beta; DeepSeekMath and R1-V used 0.04). 0 = no "
                      "reference model and no KL term (nor a kl metric).")
    num_generations: int | None = opt(8, ge=2, help="Group size: completions sampled per prompt. The generation "
                                      "batch (processes x per_device_train_batch_size x steps_per_generation) must "
                                      "be a multiple of it.")
    max_completion_length: int | None = opt(1024, ge=1, help="Max new tokens per completion; a completion cut here "
                                            "is truncated (no accuracy or format reward).")
    save_strategy: str = opt("steps", help="When to save a checkpoint: steps (every save_steps), epoch or no.")
    save_steps: float = opt(50, gt=0, help="Steps between checkpoints (a fraction < 1: of the total steps).")
    remove_unused_columns: bool | None = opt(False, help="Kept false: the rewards read the problem index column.")
    log_multimodal: bool = opt(False, help="Log the prompts' images with the completions table (wandb, trackio). "
                               "Refused with several processes when some prompts are text-only: TRL gathers the "
                               "images only on ranks whose batch has some, and the ranks would wait forever.")

    def __post_init__(self) -> None:
        # GRPOConfig derives generation_batch_size from steps_per_generation (or the reverse) and refuses both. A
        # config copied with dataclasses.replace, or printed with --print-config, carries both: keep
        # steps_per_generation, recompute the other, and refuse only a contradiction.
        self.given_batching = {name: getattr(self, name) for name in BATCHING}
        both = all(v is not None for v in self.given_batching.values())
        if both:
            self.generation_batch_size = None
        super().__post_init__()
        given = self.given_batching["generation_batch_size"]
        if both and given != self.generation_batch_size:
            raise ValueError(f"generation_batch_size={given} contradicts steps_per_generation="
                             f"{self.steps_per_generation} ({self.generation_batch_size} completions with "
                             f"{self.world_size} process(es)); set one of them")
        if both:
            self.given_batching["generation_batch_size"] = None

    def validate(self) -> None:
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise ConfigError("set num_train_epochs > 0 or max_steps > 0")
        self.check_tuning()
        self.check_launch()
        if self.reward_weights is not None:
            raise ConfigError("reward_weights: set reward.accuracy_weight, reward.format_weight and "
                              "reward.length_weight instead (the rewards are Virgo's, named)")
        if self.use_vllm and self.vllm_mode not in ("server", "colocate"):
            raise ConfigError(f"vllm_mode={self.vllm_mode!r}: server or colocate")

    def to_dict(self) -> dict[str, Any]:
        """TrainingArguments' dict (what TensorBoard and the checkpoints record), the sections as plain mappings."""
        d = super().to_dict()
        for name, value in d.items():
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                d[name] = dataclasses.asdict(value)
        return d

    def prompts_per_step(self, world_size: int) -> int:
        """Prompts drawn per generation batch (each sampled num_generations times)."""
        return self.per_device_train_batch_size * world_size * self.steps_per_generation // self.num_generations

    def describe_batch(self, world_size: int) -> str:
        completions = self.per_device_train_batch_size * world_size * self.steps_per_generation
        return (f"{completions} completions per generation = {self.prompts_per_step(world_size)} prompt(s) x "
                f"{self.num_generations} generations, over {world_size} process(es); "
                f"{self.per_device_train_batch_size} per device per micro-batch, "
                f"{self.gradient_accumulation_steps} accumulation step(s)")


def recipes_dir() -> Path:
    return Path(str(resources.files("virgo") / "recipes" / "rl"))


def available_recipes() -> list[str]:
    from virgo.train.config import available_recipes as listed

    return listed(recipes_dir())


def resolve_recipe(name_or_path: str | Path) -> Path:
    """An RL recipe by path, or by name (``tiny-cpu``) from ``recipes/rl/``."""
    from virgo.train.config import resolve_recipe as resolve

    return resolve(name_or_path, recipes_dir())


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                **cli: Any) -> RLConfig:
    """Defaults < YAML recipe (a file or a packaged RL recipe name) < ``key=value`` overrides."""
    return load(RLConfig, config=resolve_recipe(path) if path is not None else None, cli=cli,
                overrides=overrides)


def config_yaml(cfg: RLConfig) -> str:
    """The resolved config as YAML that `load_config` reads back, in any world size: library fields only where not
    default, and the generation batch as the user gave it (GRPOConfig derives it from the process count)."""
    import yaml

    from virgo.config.load import library_changes, to_dict

    data = to_dict(cfg, only=library_changes(cfg))
    for name in BATCHING:
        data.pop(name, None)
        given = getattr(cfg, "given_batching", {}).get(name)
        if given is not None:
            data[name] = given
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)


def dump_config(cfg: RLConfig, path: str | Path) -> None:
    Path(path).write_text(config_yaml(cfg), encoding="utf-8")
