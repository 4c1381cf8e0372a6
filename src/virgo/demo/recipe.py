"""The demo's recipe: the tiny model's shape, which data each training stage uses, decoding and sampling.

The training stages' hyperparameters are `virgo train` recipes in ``recipes/`` (one YAML per stage).
"""

from __future__ import annotations

from pathlib import Path

from virgo.modeling.tiny import TinySpec

# A ~1.4M-parameter Qwen2-VL: 4 decoder layers of width 128; a 2-block vision tower with 8-px patches, so a
# 64x64 chart costs 16 image tokens after the 2x2 merge.
SPEC = TinySpec(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                intermediate_size=336, vocab_size=1000, vision_depth=2, vision_embed_dim=128, vision_num_heads=4,
                patch_size=8, spatial_merge_size=2, min_pixels=64 * 64, max_pixels=64 * 64)
# Numbers up to 36 (the largest sum) are single tokens, so every addition is one table lookup.
NUMBER_TOKENS = [str(n) for n in range(10, 37)]
MODEL_SEED = 0

# Prompts. The base and the variants are asked plainly (the question is the whole user turn). The paper's prefix
# "Please first think deeply about the question, and then put the final answer in \\boxed{}." (think-boxed) was
# measured as an alternative for the variants (seed 0, first world): Virgo-T's text accuracy fell from 84.5% to
# 64% and visual thinking did not improve (0-3% accuracy either way), so the plain prompt stays.
BASE_PROMPT = "plain"
VARIANT_PROMPT = "plain"

# Every training stage is a `virgo train` recipe in recipes/ (read by the same loader as every recipe; each stage
# also writes its resolved train_config.yaml beside its model, so it can be rerun by hand with `virgo train
# --config`). Here: which data each stage trains on, by the names of `virgo.demo.data`'s files ("sd": the
# self-distilled datasets), read by `experiment.plan`.
RECIPES = Path(__file__).resolve().parent / "recipes"
BASE_STAGES = {"align1": ["align"], "align2": ["align"], "base": ["base"]}
VARIANT_STAGES = {
    "virgo-t": ["text_long_thought"],
    "virgo-sd": ["sd"],
    "virgo-t+sd": ["text_long_thought", "sd"],
    "oracle-visual": ["oracle_visual"],
    "virgo-t+rl": ["sd_problems"],  # a `virgo rl` recipe: GRPO from Virgo-T on these problems
}
QUICK_STEPS = {"virgo-t": 30, "virgo-sd": 20, "virgo-t+sd": 30, "oracle-visual": 20, "virgo-t+rl": 2}


def stage_recipe(name: str, recipes: Path | str | None = None) -> Path:
    """The recipe file of a training stage (``virgo-t``, ``align1`` ...), from ``recipes`` (a folder) or the shipped
    ones."""
    path = Path(recipes or RECIPES) / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no demo stage recipe {path}")
    return path


def stage_settings(name: str, recipes: Path | str | None = None) -> dict:
    """A stage recipe's own keys (for results.json: what each stage trained with)."""
    from virgo.config import read_yaml

    return read_yaml(stage_recipe(name, recipes))


# Decoding for every evaluation: greedy, as the paper. Repetition penalty 1.0, not the paper's 1.05: the toy's
# answers legitimately repeat digits ("3+3=6"), which a penalty would push away.
MAX_NEW_TOKENS = 128  # a four-bar thought and its solution take about 100 tokens
REPETITION_PENALTY = 1.0
# Self-distillation rollouts: n samples per visual training problem; the shortest correct one is kept. The paper
# gives no temperature. A tiny model's next-token distributions are flat, so 0.7 turns most rollouts into noise:
# Virgo-T (seed 0, first world) on 100 training problems x 4 samples solved 1 problem at 0.7 (top-p 0.9), 8 at
# 0.5 (top-p 0.9), 40 at 0.3 (top-p 1.0); greedy accuracy on the held-out hard set was 25.5%. In the shipped
# world 0.3 keeps 353-536 of 600 problems per seed.
SD_SAMPLES = 4
SD_TEMPERATURE = 0.3
