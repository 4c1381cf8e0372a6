"""Qwen2-VL, Qwen2.5-VL and Qwen3-VL as first-class families: a tiny model of each is built, loads back (model and
processor), is detected from its directory, renders its official chat template with our markers, trains (full and
LoRA, the vision tower frozen) and generates with an image; anything else gets one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from virgo.modeling.family import UnsupportedModelError, detect, families, get_family
from virgo.prompts import build_messages, load_chat_template, render_chat
from virgo.thought import MARKERS, render_response

FAMILIES = [f.name for f in families()]
IMAGE_SLOT = "<|vision_start|><|image_pad|><|vision_end|>"


@pytest.fixture(scope="module", params=FAMILIES)
def family_dir(request, tmp_path_factory) -> tuple[str, Path]:
    """(family name, a tiny model directory of it); Qwen2-VL reuses the session's tiny model."""
    from virgo.modeling.tiny import make_tiny_model

    torch.set_num_threads(1)
    if request.param == "qwen2_vl":
        return request.param, request.getfixturevalue("tiny_model_dir")
    return request.param, make_tiny_model(tmp_path_factory.mktemp(request.param) / "model", family=request.param)


@pytest.fixture(scope="module")
def loaded(family_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    name, d = family_dir
    return get_family(name), AutoModelForImageTextToText.from_pretrained(d).eval(), AutoProcessor.from_pretrained(d)


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    from virgo.train.fixture import make_tiny_longthought

    return make_tiny_longthought(tmp_path_factory.mktemp("family-data"), n=8, image_frac=0.5, seed=3)


def test_tiny_model_loads_back_and_is_detected(family_dir, loaded):
    name, d = family_dir
    family, model, processor = loaded
    assert detect(d) is family and detect(model) is family and detect(model.config) is family
    assert type(model).__name__ == family.model_class
    assert type(processor).__name__ == f"Virgo{family.processor_class}" and hasattr(processor, "image_processor")
    assert processor.chat_template == load_chat_template(family.chat_template)
    names = {p.name for p in d.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json"} <= names
    spec = json.loads((d / "virgo_tiny_spec.json").read_text())
    assert spec.get("family", "qwen2_vl") == name


def test_family_parts_of_a_loaded_model(loaded):
    from virgo.train.freeze import lora_target_modules, trainable_summary

    family, model, _ = loaded
    tower = family.vision_tower(model)
    cfg = model.config
    assert len(family.decoder_layers(model)) == cfg.text_config.num_hidden_layers
    assert len(family.vision_blocks(model)) == cfg.vision_config.depth
    units = family.fsdp_units(model)
    assert units[-1] is family.decoder_layers(model)[-1] and tower in units
    # The rope index is the model's own method, not a copy.
    fn = family.rope_index(model)
    assert fn.__self__ is family.inner(model) and fn.__func__ is type(family.inner(model)).get_rope_index
    mergers = dict(family.merger_modules(model))
    assert "model.visual.merger" in mergers
    if family.name == "qwen3_vl":  # DeepStack: every merger of the list is a projection into the LM too
        assert "model.visual.deepstack_merger_list.0" in mergers
    # LoRA's default targets: the language model's linears, never the vision tower or its mergers.
    targets = lora_target_modules(model, "auto", None)
    tower_modules = {id(m) for m in tower.modules()}
    named = dict(model.named_modules())
    assert len(targets) == 7 * cfg.text_config.num_hidden_layers
    assert all(".language_model." in t and id(named[t]) not in tower_modules for t in targets)
    assert lora_target_modules(model, "auto", 1) == [t for t in targets if ".layers.1." in t]
    groups = trainable_summary(model)
    assert groups["vision_tower"]["total"] > 0 and groups["merger"]["total"] == sum(
        p.numel() for m in mergers.values() for p in m.parameters())


def test_chat_template_renders_an_image_and_our_markers(loaded):
    family, _, processor = loaded
    response = render_response("Two squares and one more: 2 + 1 = 3. Wait, let me count again: 3.", "\\boxed{3}")
    messages = build_messages("How many squares?", 1, prompt="think-boxed", response=response)
    full = render_chat(messages, template=family.chat_template)
    prompt = render_chat(messages[:-1], add_generation_prompt=True, template=family.chat_template)
    assert full.startswith(prompt) and prompt.endswith("<|im_start|>assistant\n")
    assert full.count(IMAGE_SLOT) == 1 and full.index(IMAGE_SLOT) < full.index("How many squares?")
    assert response in full and all(m in full for m in MARKERS)
    # transformers renders the template saved with the model to the same text
    assert processor.apply_chat_template(messages, tokenize=False) == full
    tok = processor.tokenizer
    assert all(len(tok(m, add_special_tokens=False)["input_ids"]) == 1 for m in MARKERS)


def _cfg(model_dir, train_file, out, family, *extra):
    from virgo.train.config import load_config

    return load_config(None, [
        f"model_name_or_path={model_dir}", f"train_files={train_file}", f"output_dir={out}",
        f"chat_template={family.chat_template}", "image_max_pixels=3136", "cutoff_len=1024",
        "per_device_train_batch_size=4", "learning_rate=2e-3", "warmup_ratio=0", "logging_steps=1",
        "save_strategy=no", "torch_threads=1", "seed=0", "max_steps=3", "progress=false", *extra])


def _params(path):
    from virgo.modeling.load import load_model

    model = load_model(path)
    family = detect(model)
    tower = {n: p.detach().clone() for n, p in family.vision_tower(model).named_parameters()}
    layers = {n: p.detach().clone() for n, p in family.inner(model).language_model.named_parameters()}
    return family, tower, layers


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_train_full_and_lora_with_the_vision_tower_frozen(family_dir, train_file, tmp_path, mode):
    """Full fine-tuning keeps the whole vision side frozen (merger too); LoRA (with padding-free packing, whose
    positions come from the family's rope index) trains the mergers in full (Qwen3-VL's DeepStack mergers
    included) and the language model through its adapters."""
    from virgo.train.sft import train

    _, d = family_dir
    family = detect(d)
    extra = ["train_merger=false"] if mode == "full" else ["finetuning_type=lora", "train_merger=true", "packing=true"]
    out = train(_cfg(d, train_file, tmp_path / mode, family, *extra))
    _, before_tower, before_lm = _params(d)
    after_family, after_tower, after_lm = _params(out)
    assert after_family is family
    frozen = [n for n in before_tower if not family.is_merger(n)]
    merger = [n for n in before_tower if family.is_merger(n)]
    assert frozen and merger
    assert all(before_tower[n].equal(after_tower[n]) for n in frozen)  # bit-identical
    merger_changed = {n for n in merger if not before_tower[n].equal(after_tower[n])}
    if mode == "full":
        assert not merger_changed
    else:
        assert {n.split(".")[0] for n in merger_changed} == set(family.merger_names)
    proj = [n for n in before_lm if n.endswith(("q_proj.weight", "up_proj.weight"))]
    assert proj and all(not before_lm[n].equal(after_lm[n]) for n in proj)
    info = json.loads((out / "run_info.json").read_text())
    assert info["trainable"]["vision_tower"]["trainable"] == 0 and info["chat_template"] == family.chat_template


def test_generate_with_an_image_equals_transformers_generate(loaded):
    """The transformers backend (our decoding loop, batched and left-padded, positions from the family's rope
    index) gives the same greedy tokens as transformers' own generate, with and without an image."""
    from virgo.infer import GenerateConfig, GenRequest, make_backend
    from virgo.prompts import END_OF_TURN

    family, model, processor = loaded
    cfg = GenerateConfig(max_new_tokens=12, repetition_penalty=1.0, chat_template=family.chat_template,
                         batch_size=2)
    red = Image.new("RGB", (40, 40), (200, 30, 30))
    reqs = [GenRequest(build_messages("What colour is the square?", 1), images=[red], id="img"),
            GenRequest(build_messages("What is 12 + 7?", 0, prompt="think-boxed"), id="text")]
    outs = make_backend("transformers", model=(model, processor)).generate(reqs, cfg)
    stop = processor.tokenizer.convert_tokens_to_ids(END_OF_TURN)
    for req, out in zip(reqs, outs, strict=True):
        x = processor(text=[render_chat(req.messages, add_generation_prompt=True, template=family.chat_template)],
                      images=req.images or None, return_tensors="pt")
        with torch.no_grad():
            ref = model.generate(**x, max_new_tokens=12, do_sample=False)[0, x["input_ids"].shape[1]:].tolist()
        assert out.token_ids + ([stop] if out.finish_reason == "stop" else []) == ref
        assert out.prompt_tokens == x["input_ids"].shape[1] and out.completion_tokens > 0


def test_an_unsupported_model_gets_one_clear_error(tmp_path):
    from transformers import LlamaConfig

    from virgo.modeling.load import load_model, load_processor

    LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                architectures=["LlamaForCausalLM"]).save_pretrained(tmp_path / "llama")
    for attempt in (detect, load_model, load_processor):
        with pytest.raises(UnsupportedModelError) as e:
            attempt(tmp_path / "llama")
        msg = str(e.value)
        assert "'llama'" in msg and "LlamaForCausalLM" in msg and str(tmp_path / "llama") in msg
        assert all(f.title in msg and f.name in msg for f in families())
    with pytest.raises(UnsupportedModelError, match="supported: Qwen2-VL"):
        get_family("internvl")
    with pytest.raises(FileNotFoundError, match="no such model directory, and not a hub id"):
        detect(tmp_path / "missing")


def test_family_names_are_forgiving():
    assert get_family("Qwen2.5-VL") is get_family("qwen2_5_vl") is detect({"model_type": "qwen2_5_vl"})
    assert detect({"architectures": ["Qwen3VLForConditionalGeneration"]}).name == "qwen3_vl"
