"""Tiny-config parts the Qwen-VL families share: the text model, the special-token ids, the 2.5/3 vision tower.

Each takes a `virgo.modeling.tiny.TinySpec`; a family module composes them into its own config class.
"""

from __future__ import annotations

from typing import Any


def vision_config(spec: Any) -> dict[str, Any]:
    """The vision side shared with Qwen3-VL: width ``vision_embed_dim``, MLP twice as wide (as the tiny Qwen2-VL)."""
    return {
        "depth": spec.vision_depth,
        "hidden_size": spec.vision_embed_dim,
        "intermediate_size": 2 * spec.vision_embed_dim,
        "num_heads": spec.vision_num_heads,
        "out_hidden_size": spec.hidden_size,
        "patch_size": spec.patch_size,
        "spatial_merge_size": spec.spatial_merge_size,
        "temporal_patch_size": spec.temporal_patch_size,
    }


def text_config(spec: Any, ids: dict[str, int], vocab_size: int, rope: dict[str, Any]) -> dict[str, Any]:
    return {
        "vocab_size": vocab_size,
        "hidden_size": spec.hidden_size,
        "num_hidden_layers": spec.num_hidden_layers,
        "num_attention_heads": spec.num_attention_heads,
        "num_key_value_heads": spec.num_key_value_heads,
        "intermediate_size": spec.intermediate_size,
        "max_position_embeddings": spec.max_position_embeddings,
        "rope_parameters": {"rope_type": "default", "rope_theta": spec.rope_theta, **rope},
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "bos_token_id": None,
        "tie_word_embeddings": True,
    }


def special_ids(ids: dict[str, int]) -> dict[str, int]:
    return {"image_token_id": ids["<|image_pad|>"], "video_token_id": ids["<|video_pad|>"],
            "vision_start_token_id": ids["<|vision_start|>"], "vision_end_token_id": ids["<|vision_end|>"],
            "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"]}
