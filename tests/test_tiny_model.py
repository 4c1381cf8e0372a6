"""The tiny-model factory: a real Qwen2-VL checkpoint directory that trains and generates with an image."""

from __future__ import annotations

import json
import subprocess
import sys

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
from transformers import AutoProcessor
bare = AutoProcessor.from_pretrained(sys.argv[1])
assert "virgo" not in sys.modules
import virgo.modeling.processor  # the documented step: registers the processor class
full = AutoProcessor.from_pretrained(sys.argv[1])
print(json.dumps({"bare": type(bare).__name__, "bare_has_images": hasattr(bare, "image_processor"),
                  "full": type(full).__name__, "image_processor": type(full.image_processor).__name__,
                  "tokenizer_vocab": len(full.tokenizer)}))
"""


def test_processor_loads_in_a_fresh_python_after_importing_virgo_modeling(tiny_model_dir):
    """The pitfall documented in ``virgo.modeling.processor`` and ``virgo make-tiny-model --help``: without the
    import, AutoProcessor silently gives only the tokenizer; with it, the full processor with its image side."""
    r = subprocess.run([sys.executable, "-c", _FRESH_LOAD, str(tiny_model_dir)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert not got["bare_has_images"], got  # the silent fallback, pinned so a transformers change is noticed
    assert got["full"] == "VirgoQwen2VLProcessor" and got["image_processor"].startswith("Qwen2VLImageProcessor"), got
    assert got["tokenizer_vocab"] > 1000
