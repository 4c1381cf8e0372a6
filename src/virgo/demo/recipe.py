"""The demo's recipe: the tiny model's shape and every training stage's hyperparameters, in one place.

Each stage is a set of `virgo.train` TrainConfig overrides; the run writes each stage's resolved
``train_config.yaml`` beside its model, so a stage can also be rerun by hand with `virgo train --config`.
"""

from __future__ import annotations

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

_COMMON = dict(save_strategy="no", logging_steps=25, resume_from_checkpoint="none", warmup_ratio=0.05,
               num_train_epochs=1, per_device_train_batch_size=32, lr_scheduler_type="cosine")

# Base model (shipped): alignment on captions with the vision tower trainable (two rounds, as measured), then
# the instruction mix. Measured on 2 cores: about 0.4 s/step for alignment, 0.15 s/step for the mix.
BASE_STAGES = {
    "align1": dict(_COMMON, data="align", freeze_vision_tower=False, learning_rate=2e-3, max_steps=600,
                   per_device_train_batch_size=64),
    "align2": dict(_COMMON, data="align", freeze_vision_tower=False, learning_rate=1e-3, max_steps=600,
                   per_device_train_batch_size=64, warmup_ratio=0.02, seed=43),
    "base": dict(_COMMON, data="base", freeze_vision_tower=False, learning_rate=1e-3, max_steps=3000,
                 warmup_ratio=0.02),
}

# The experiment (per seed): the paper's variants, all with the vision tower frozen as in the paper, and all
# with LoRA (rank 32) on the language model instead of the paper's full fine-tuning (full fine-tuning overwrote
# the image path; src/virgo/demo/README.md). What counted was the number of updates (seed 2, visual hard
# accuracy of Virgo-T; base 13.5%): 400 steps of 32 examples 7.5%, 600 x 32 57.5%, 800 x 32 65.0%, 800 x 16
# 65.0% at half the cost of 800 x 32. So every variant takes batches of 16.
_VARIANT = dict(_COMMON, prompt=VARIANT_PROMPT, finetuning_type="lora", lora_rank=32, lora_alpha=64,
                learning_rate=2e-3, per_device_train_batch_size=16)
VARIANT_STAGES = {
    "virgo-t": dict(_VARIANT, data="text_long_thought", max_steps=800),
    "virgo-sd": dict(_VARIANT, data="sd", max_steps=600),
    "virgo-t+sd": dict(_VARIANT, data="text_long_thought+sd", max_steps=1000),
    "oracle-visual": dict(_VARIANT, data="oracle_visual", max_steps=600),
}
QUICK_STEPS = {"virgo-t": 30, "virgo-sd": 20, "virgo-t+sd": 30, "oracle-visual": 20}

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
