"""The tiny-model factory: a real checkpoint directory (Qwen2-VL by default) that trains and generates with an
image, and whose processor `import virgo` registers. The other families: tests/test_families.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from PIL import Image

from virgo.prompts import build_messages, render_chat
from virgo.thought import MARKERS


def test_directory_is_a_normal_checkpoint(tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json"} <= names
    assert not any(n.endswith(".bin") for n in names)


def test_tokenizer_has_specials_and_markers_as_single_tokens(tiny_model):
    _, processor = tiny_model
    tok = processor.tokenizer
    for t in ("<|im_start|>", "<|im_end|>", "<|image_pad|>", "<|vision_start|>", *MARKERS):
        ids = tok(t, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, t
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    text = render_chat(build_messages("What is 12 + 7?", 1, prompt="think-boxed"), add_generation_prompt=True)
    assert tok.decode(tok(text)["input_ids"]) == text


def test_forward_backward_generate_with_image(tiny_model):
    model, processor = tiny_model
    img = Image.new("RGB", (40, 40), (200, 30, 30))
    text = render_chat(build_messages("What colour is the square?", 1), add_generation_prompt=True)
    x = processor(text=[text], images=[img], return_tensors="pt")
    n_image_tokens = int((x["input_ids"] == model.config.image_token_id).sum())
    assert 0 < n_image_tokens <= 49  # small images cost few tokens
    labels = x["input_ids"].clone()
    labels[labels == model.config.image_token_id] = -100
    model.zero_grad()
    out = model(**x, labels=labels)
    assert torch.isfinite(out.loss) and out.loss.item() > 5  # random init: about ln(vocab)
    out.loss.backward()
    vision_grad = model.model.visual.patch_embed.proj.weight.grad
    assert vision_grad is not None and vision_grad.abs().sum() > 0  # the image reaches the loss
    model.zero_grad()
    with torch.no_grad():
        g = model.generate(**x, max_new_tokens=6, do_sample=False)
    assert g.shape[1] > x["input_ids"].shape[1]


# Run in a fresh Python: AutoProcessor resolves a saved processor with the classes registered in that process.
_FRESH_LOAD = """
import json, sys
virgo_first = sys.argv[1] == "virgo-first"
if virgo_first:
    import virgo  # the only step: registers the processors when transformers' AutoProcessor is imported
    assert "transformers" not in sys.modules  # and importing virgo itself stays light
from transformers import AutoProcessor
if not virgo_first:
    bare = AutoProcessor.from_pretrained(sys.argv[2])
    assert not hasattr(bare, "image_processor"), type(bare)  # the silent fallback, pinned
    import virgo  # transformers was imported first: registers at once
got = {}
for d in sys.argv[2:]:
    p = AutoProcessor.from_pretrained(d)
    got[d] = [type(p).__name__, type(p.image_processor).__name__, len(p.tokenizer)]
print(json.dumps(got))
"""


@pytest.fixture(scope="module")
def family_dirs(tiny_model_dir, tmp_path_factory):
    from virgo.modeling.tiny import make_tiny_model

    others = [make_tiny_model(tmp_path_factory.mktemp(f) / "model", family=f) for f in ("qwen2_5_vl", "qwen3_vl")]
    return [tiny_model_dir, *others]


@pytest.mark.parametrize("order", ["virgo-first", "transformers-first"])
def test_import_virgo_alone_registers_every_family_processor(family_dirs, order):
    """In a fresh Python, ``import virgo`` (before or after transformers) is all it takes for AutoProcessor to
    return the full processor, image side included, for a tiny model of every family."""
    r = subprocess.run([sys.executable, "-c", _FRESH_LOAD, order, *map(str, family_dirs)], capture_output=True,
                       check=False, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    names = [got[str(d)][0] for d in family_dirs]
    assert names == ["VirgoQwen2VLProcessor", "VirgoQwen2_5_VLProcessor", "VirgoQwen3VLProcessor"], got
    assert all(v[1].startswith("Qwen2VLImageProcessor") and v[2] > 1000 for v in got.values()), got


def test_make_tiny_model_refuses_unknown_family_and_size(tmp_path):
    from virgo.modeling.family import UnsupportedModelError
    from virgo.modeling.tiny import make_tiny_model

    with pytest.raises(UnsupportedModelError, match="supported: Qwen2-VL"):
        make_tiny_model(tmp_path / "a", family="llava")
    with pytest.raises(ValueError, match="unknown tiny size 'xxl'"):
        make_tiny_model(tmp_path / "b", family="qwen3_vl", size="xxl")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_qwen2_vl_is_the_default_and_unchanged(tiny_model_dir, tmp_path):
    """The default family is Qwen2-VL, and naming it changes nothing: the same bytes (the demo ships a checkpoint
    built by this factory, and its spec file has no family key)."""
    from virgo.modeling.tiny import make_tiny_model

    again = make_tiny_model(tmp_path / "m", family="qwen2_vl", size="xs", seed=0)
    for f in sorted(tiny_model_dir.iterdir()):
        assert (again / f.name).read_bytes() == f.read_bytes(), f.name
    assert "family" not in json.loads((again / "virgo_tiny_spec.json").read_text())
