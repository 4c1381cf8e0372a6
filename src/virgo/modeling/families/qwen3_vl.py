"""Qwen3-VL (dense models; the MoE variant ``qwen3_vl_moe`` is not registered).

Against Qwen2.5-VL: the vision tower (``model.visual``, ``Qwen3VLVisionBlock`` x depth) adds a learned position
embedding (``pos_embed``, ``num_position_embeddings`` = a square grid, interpolated to each image) and DeepStack:
features of the blocks in ``deepstack_visual_indexes`` go through ``deepstack_merger_list`` into the first decoder
layers, so those mergers are projections into the language model like ``merger``. Decoder layers are
``Qwen3VLTextDecoderLayer`` (q/k norms, explicit ``head_dim``); M-RoPE is interleaved (``mrope_interleaved``).
``get_rope_index`` has Qwen2-VL's signature; for videos it splits each video's grid into frames (Qwen3-VL puts
a timestamp before every frame). Images place exactly as in Qwen2-VL.
"""

from __future__ import annotations

from typing import Any

from virgo.modeling.families.base import Family
from virgo.modeling.families.qwen_parts import special_ids, text_config, vision_config


def mrope_section(head_dim: int) -> list[int]:
    """Interleaved sections in the real models' proportion (head_dim 128: [24, 20, 20])."""
    half = head_dim // 2
    hw = half * 5 // 16
    return [half - 2 * hw, hw, hw]


def tiny_config(spec: Any, ids: dict[str, int], vocab_size: int) -> Any:
    """DeepStack from the middle block; an 8 x 8 learned position grid (real: 48 x 48, for 16-px patches)."""
    from transformers import Qwen3VLConfig

    text = text_config(spec, ids, vocab_size,
                       {"mrope_section": mrope_section(spec.head_dim), "mrope_interleaved": True})
    text["head_dim"] = spec.head_dim
    vision = dict(vision_config(spec), num_position_embeddings=64,
                  deepstack_visual_indexes=[max(spec.vision_depth // 2 - 1, 0)])
    return Qwen3VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=True, **special_ids(ids))


FAMILY = Family(
    name="qwen3_vl",
    title="Qwen3-VL",
    config_class="Qwen3VLConfig",
    model_class="Qwen3VLForConditionalGeneration",
    processor_class="Qwen3VLProcessor",
    chat_template="qwen3vl",
    build_tiny_config=tiny_config,
    decoder_layer_classes=("Qwen3VLTextDecoderLayer",),
    vision_block_classes=("Qwen3VLVisionBlock",),
    merger_names=("merger", "deepstack_merger_list"),
    # Qwen3-VL's image processor normalises to [-1, 1] (mean = std = 0.5), not with CLIP's statistics.
    image_processor_kwargs={"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]},
)
