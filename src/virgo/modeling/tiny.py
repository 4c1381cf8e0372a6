"""Build a tiny Qwen2-VL model directory from a config: random init, local tokenizer, real processor.

The result loads with ``AutoModelForImageTextToText`` / ``AutoProcessor`` exactly like a real
checkpoint (safetensors), so tests and the demo exercise the same code paths as Qwen2-VL-72B.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import virgo.modeling.processor  # noqa: F401  (registers the processor with AutoProcessor)


@dataclass(frozen=True)
class TinySpec:
    """Sizes of a tiny Qwen2-VL. ``mrope_section`` must add up to head_dim / 2."""

    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    intermediate_size: int = 512
    vocab_size: int = 2048
    vision_depth: int = 2
    vision_embed_dim: int = 64
    vision_num_heads: int = 4
    patch_size: int = 4
    spatial_merge_size: int = 2
    temporal_patch_size: int = 2
    # A small image costs few tokens: (side / patch)^2 / merge^2 tokens, sides clamped to these pixel limits.
    min_pixels: int = 32 * 32
    max_pixels: int = 56 * 56
    max_position_embeddings: int = 32768
    rope_theta: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def mrope_section(self) -> list[int]:
        half = self.head_dim // 2
        # Real Qwen2-VL splits 64 = 16 + 24 + 24 (t, h, w); keep that proportion.
        t = half // 4
        h = (half - t) // 2
        return [t, h, half - t - h]


SIZES = {
    "xs": TinySpec(),
    "s": TinySpec(hidden_size=256, num_hidden_layers=4, intermediate_size=1024, vision_embed_dim=128),
}


def build_config(spec: TinySpec, tokenizer):
    from transformers import Qwen2VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in
           ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|im_end|>", "<|endoftext|>")}
    return Qwen2VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=spec.hidden_size,
            num_hidden_layers=spec.num_hidden_layers,
            num_attention_heads=spec.num_attention_heads,
            num_key_value_heads=spec.num_key_value_heads,
            intermediate_size=spec.intermediate_size,
            max_position_embeddings=spec.max_position_embeddings,
            rope_parameters={"rope_type": "default", "rope_theta": spec.rope_theta, "mrope_section": spec.mrope_section},
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
            bos_token_id=None,
            tie_word_embeddings=True,
        ),
        vision_config=dict(
            depth=spec.vision_depth,
            embed_dim=spec.vision_embed_dim,
            hidden_size=spec.hidden_size,
            num_heads=spec.vision_num_heads,
            mlp_ratio=2,
            patch_size=spec.patch_size,
            spatial_merge_size=spec.spatial_merge_size,
            temporal_patch_size=spec.temporal_patch_size,
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=True,
    )


def build_processor(spec: TinySpec, tokenizer):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from virgo.modeling.processor import VirgoQwen2VLProcessor

    image_processor = Qwen2VLImageProcessorPil(
        patch_size=spec.patch_size, merge_size=spec.spatial_merge_size, temporal_patch_size=spec.temporal_patch_size,
        min_pixels=spec.min_pixels, max_pixels=spec.max_pixels)
    return VirgoQwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                 chat_template=tokenizer.chat_template)


def make_tiny_model(out: str | Path, *, size: str | TinySpec = "xs", seed: int = 0,
                    corpus: Iterable[str] | None = None, vocab_size: int | None = None) -> Path:
    """Write a tiny, randomly initialised Qwen2-VL model directory to ``out`` and return its path."""
    import torch
    from transformers import GenerationConfig, Qwen2VLForConditionalGeneration

    from virgo.modeling.corpus import builtin_corpus
    from virgo.modeling.tokenizer import train_tokenizer

    spec = SIZES[size] if isinstance(size, str) else size
    if vocab_size is not None:
        spec = TinySpec(**{**asdict(spec), "vocab_size": vocab_size})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(corpus if corpus is not None else builtin_corpus(seed=seed), spec.vocab_size)
    config = build_config(spec, tokenizer)
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id, do_sample=False)
    model.save_pretrained(out, safe_serialization=True)
    build_processor(spec, tokenizer).save_pretrained(out)
    (out / "virgo_tiny_spec.json").write_text(json.dumps({**asdict(spec), "seed": seed}, indent=2))
    return out
