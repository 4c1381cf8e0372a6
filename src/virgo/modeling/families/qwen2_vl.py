"""Qwen2-VL (the paper's family: Qwen2-VL-7B/72B-Instruct).

Vision tower ``model.visual`` (``Qwen2VLVisionBlock`` x depth, then ``merger``, the projection into the language
model); decoder layers ``Qwen2VLDecoderLayer``. ``get_rope_index(input_ids, mm_token_type_ids, image_grid_thw,
video_grid_thw, attention_mask)``.
"""

from __future__ import annotations

from typing import Any

from virgo.modeling.families.base import Family
from virgo.modeling.families.qwen_parts import special_ids, text_config


def tiny_config(spec: Any, ids: dict[str, int], vocab_size: int) -> Any:
    """Qwen2-VL's vision width is ``embed_dim``; its ``hidden_size`` is the language model's (the merger's output)."""
    from transformers import Qwen2VLConfig

    vision = {"depth": spec.vision_depth, "embed_dim": spec.vision_embed_dim, "hidden_size": spec.hidden_size,
              "num_heads": spec.vision_num_heads, "mlp_ratio": 2, "patch_size": spec.patch_size,
              "spatial_merge_size": spec.spatial_merge_size, "temporal_patch_size": spec.temporal_patch_size}
    return Qwen2VLConfig(text_config=text_config(spec, ids, vocab_size, {"mrope_section": spec.mrope_section}),
                         vision_config=vision, tie_word_embeddings=True, **special_ids(ids))


FAMILY = Family(
    name="qwen2_vl",
    title="Qwen2-VL",
    config_class="Qwen2VLConfig",
    model_class="Qwen2VLForConditionalGeneration",
    processor_class="Qwen2VLProcessor",
    chat_template="qwen2vl",
    build_tiny_config=tiny_config,
    decoder_layer_classes=("Qwen2VLDecoderLayer",),
    vision_block_classes=("Qwen2VLVisionBlock",),
)
