"""Qwen2.5-VL.

Against Qwen2-VL: the vision tower (``model.visual``, ``Qwen2_5_VLVisionBlock`` x depth, then ``merger``) uses
windowed attention except in ``fullatt_block_indexes``, has its own width (``hidden_size``, ``intermediate_size``)
and projects to ``out_hidden_size``; decoder layers are ``Qwen2_5_VLDecoderLayer``. ``get_rope_index`` takes
``second_per_grid_ts`` (seconds per temporal patch of a video, for absolute time in the temporal axis); images
place exactly as in Qwen2-VL.
"""

from __future__ import annotations

from typing import Any

from virgo.modeling.families.base import Family
from virgo.modeling.families.qwen_parts import special_ids, text_config, vision_config


def tiny_config(spec: Any, ids: dict[str, int], vocab_size: int) -> Any:
    """Windows of 4 x 4 merged tokens and the last block with full attention, in the real models' proportions
    (7B: window 112 px = 4 merged 28-px tokens; full attention every 8th of 32 blocks)."""
    from transformers import Qwen2_5_VLConfig

    vision = dict(vision_config(spec), window_size=4 * spec.patch_size * spec.spatial_merge_size,
                  fullatt_block_indexes=[spec.vision_depth - 1])
    return Qwen2_5_VLConfig(text_config=text_config(spec, ids, vocab_size, {"mrope_section": spec.mrope_section}),
                            vision_config=vision, tie_word_embeddings=True, **special_ids(ids))


FAMILY = Family(
    name="qwen2_5_vl",
    title="Qwen2.5-VL",
    config_class="Qwen2_5_VLConfig",
    model_class="Qwen2_5_VLForConditionalGeneration",
    processor_class="Qwen2_5_VLProcessor",
    chat_template="qwen2_5vl",
    build_tiny_config=tiny_config,
    decoder_layer_classes=("Qwen2_5_VLDecoderLayer",),
    vision_block_classes=("Qwen2_5_VLVisionBlock",),
    rope_index_extra_kwargs=("second_per_grid_ts",),
)
