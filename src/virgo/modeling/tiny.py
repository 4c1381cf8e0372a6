"""Build a tiny model directory of any supported family: random init, local tokenizer, real processor.

The result loads with ``AutoModelForImageTextToText`` / ``AutoProcessor`` exactly like a real checkpoint
(safetensors), so tests and the demo exercise the same code paths as Qwen2-VL-72B, Qwen2.5-VL-72B or Qwen3-VL.
`TinySpec` holds the sizes every family shares; each family turns it into its own config
(`virgo.modeling.family.Family.tiny_config`). The Qwen2-VL directories are byte-identical to those built before
families existed (the demo ships a checkpoint built from one).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from virgo.modeling.family import Family, get_family

DEFAULT_FAMILY = "qwen2_vl"
SPECIAL_TOKEN_IDS = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|im_end|>",
                     "<|endoftext|>")


@dataclass(frozen=True)
class TinySpec:
    """Sizes of a tiny model (Qwen2-VL's names). ``mrope_section`` must add up to head_dim / 2."""

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


def build_config(spec: TinySpec, tokenizer, family: Family | str = DEFAULT_FAMILY):
    """The family's transformers config at size ``spec``, with the tokenizer's special-token ids."""
    family = get_family(family) if isinstance(family, str) else family
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKEN_IDS}
    return family.tiny_config(spec, ids, len(tokenizer))


def build_processor(spec: TinySpec, tokenizer, family: Family | str = DEFAULT_FAMILY):
    """The family's torchvision-free processor: a PIL image processor whose small images cost few tokens."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from virgo.modeling.processor import processor_class

    family = get_family(family) if isinstance(family, str) else family
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=spec.patch_size, merge_size=spec.spatial_merge_size, temporal_patch_size=spec.temporal_patch_size,
        min_pixels=spec.min_pixels, max_pixels=spec.max_pixels, **family.image_processor_kwargs)
    return processor_class(family)(image_processor=image_processor, tokenizer=tokenizer,
                                   chat_template=tokenizer.chat_template)


def make_tiny_model(out: str | Path, *, family: Family | str = DEFAULT_FAMILY, size: str | TinySpec = "xs",
                    seed: int = 0, corpus: Iterable[str] | None = None, vocab_size: int | None = None) -> Path:
    """Write a tiny, randomly initialised model of ``family`` (a name such as ``qwen3_vl``) to ``out``, with a
    tokenizer trained on ``corpus`` (default: a built-in one) and the family's chat template; returns the path."""
    import torch
    from transformers import GenerationConfig

    from virgo.modeling.corpus import builtin_corpus
    from virgo.modeling.tokenizer import train_tokenizer
    from virgo.prompts import load_chat_template

    family = get_family(family) if isinstance(family, str) else family
    if isinstance(size, str) and size not in SIZES:
        raise ValueError(f"unknown tiny size {size!r}; one of {sorted(SIZES)}")
    spec = SIZES[size] if isinstance(size, str) else size
    if vocab_size is not None:
        spec = TinySpec(**{**asdict(spec), "vocab_size": vocab_size})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(corpus if corpus is not None else builtin_corpus(seed=seed), spec.vocab_size,
                                chat_template=load_chat_template(family.chat_template))
    config = build_config(spec, tokenizer, family)
    torch.manual_seed(seed)
    model = family.model_cls(config)
    model.generation_config = GenerationConfig(
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id, do_sample=False)
    model.save_pretrained(out, safe_serialization=True)
    build_processor(spec, tokenizer, family).save_pretrained(out)
    record = {**asdict(spec), "seed": seed}
    if family.name != DEFAULT_FAMILY:  # Qwen2-VL directories stay as they were before families existed
        record["family"] = family.name
    (out / "virgo_tiny_spec.json").write_text(json.dumps(record, indent=2))
    return out
