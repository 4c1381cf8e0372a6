"""Training data to tensors: rendering, label masks, images, the cutoff and the pre-flight report, batching."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from virgo.prompts import build_messages, load_chat_template, render_chat
from virgo.records import LongThoughtExample, RecordError, SFTExample, write_records
from virgo.train.collate import SFTCollator
from virgo.train.config import load_config
from virgo.train.data import (
    IGNORE_INDEX,
    IMAGE_TOKEN,
    ImageLimits,
    apply_cutoff,
    build_dataset,
    encode_examples,
    format_sample,
    image_token_count,
    read_examples,
)
from virgo.train.fixture import make_tiny_longthought


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    from virgo.modeling.load import load_processor

    return load_processor(tiny_model_dir)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("train-data")
    make_tiny_longthought(d, n=12, image_frac=0.5, seed=3)
    return d


def _limits(processor):
    return ImageLimits.for_processor(processor, None, 56 * 56)


def _image_example(data_dir):
    for ex in read_examples([data_dir / "train.jsonl"]):
        if ex.images:
            return ex
    raise AssertionError("fixture has no image example")


def test_label_mask_of_one_rendered_sample(processor, data_dir):
    """The prompt (system, user turn, image tokens, assistant header) is masked; response + <|im_end|> is trained."""
    ex = _image_example(data_dir)
    (enc,) = encode_examples([ex], processor, prompt="plain", system=None, limits=_limits(processor), progress=False)
    # A 32x32 image with the tiny processor (patch 4, merge 2) costs (32/4)^2 / 2^2 = 16 tokens.
    assert enc.image_tokens == [16]
    expected = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                f"<|vision_start|>{IMAGE_TOKEN}\u00d716<|vision_end|>How many squares are in the image?<|im_end|>\n"
                f"<|im_start|>assistant\n\u27e6{ex.response}<|im_end|>\u27e7")
    assert format_sample(enc, processor.tokenizer) == expected

    labels = enc.labels()
    tok = processor.tokenizer
    image_id = tok.convert_tokens_to_ids(IMAGE_TOKEN)
    assert (labels[: enc.prompt_len] == IGNORE_INDEX).all()
    assert (labels[enc.prompt_len:] == enc.input_ids[enc.prompt_len:]).all()
    assert (enc.input_ids == image_id).sum() == 16 and not (labels == image_id).any()
    assert labels[-1] == tok.convert_tokens_to_ids("<|im_end|>")  # the model learns to stop
    # The masked prefix is exactly the generation prompt used at inference time.
    prompt = render_chat(build_messages(ex.question, 1, prompt="plain"), add_generation_prompt=True)
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    assert len(prompt_ids) + 15 == enc.prompt_len


def test_prompt_and_system_options_are_rendered(processor):
    ex = SFTExample(id="s", question="Q?", response="A.")
    (enc,) = encode_examples([ex], processor, prompt="think-boxed", system="Be brief.", limits=_limits(processor),
                             progress=False)
    text = format_sample(enc, processor.tokenizer)
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nPlease first think deeply")
    assert text.endswith("Q?<|im_end|>\n<|im_start|>assistant\n\u27e6A.<|im_end|>\u27e7")


def test_cutoff_drop_truncate_and_never_cut_image_tokens(processor, data_dir):
    exs = read_examples([data_dir / "train.jsonl"])
    enc = encode_examples(exs, processor, prompt="plain", system=None, limits=_limits(processor), progress=False)
    img = next(e for e in enc if e.images)
    cutoff = img.prompt_len + 5  # every sample is longer than this
    over = [e for e in enc if len(e) > cutoff]
    kept, rep = apply_cutoff(enc, cutoff, "drop")
    assert rep.over_cutoff == len(over) and rep.dropped == len(over) and len(kept) == len(enc) - len(over)

    kept, rep = apply_cutoff(enc, cutoff, "truncate")
    too_long_prompt = [e for e in enc if e.prompt_len >= cutoff]
    assert rep.dropped == rep.dropped_prompt_too_long == len(too_long_prompt)
    assert rep.truncated == len(over) - len(too_long_prompt) > 0
    for k in kept:
        assert len(k) <= cutoff and k.truncated == (k.id in rep.over_cutoff_ids)
        original = next(e for e in enc if e.id == k.id)
        assert (k.input_ids[: k.prompt_len] == original.input_ids[: k.prompt_len]).all()  # prompt intact
    # A sample whose prompt (with its 16 image tokens) exceeds the cutoff is dropped, never cut through its image.
    kept, rep = apply_cutoff([img], img.prompt_len - 3, "truncate")
    assert kept == [] and rep.dropped_prompt_too_long == 1
    assert "1 sample(s) longer" in "\n".join(rep.lines())


def test_bad_record_names_file_and_line(tmp_path):
    good = {"id": "a", "question": "q", "thought": "t", "solution": "s"}
    bad = {"id": "b", "question": "q", "thought": "t"}  # no solution
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(RecordError, match=r"d\.jsonl:2: field 'solution': missing required field"):
        read_examples([path])


def test_missing_image_is_a_located_error(tmp_path, processor):
    ex = LongThoughtExample(id="x", question="q", thought="t", solution="s", images=[str(tmp_path / "nope.png")])
    with pytest.raises(RecordError, match="example 'x': cannot read image"):
        encode_examples([ex], processor, prompt="plain", system=None, limits=_limits(processor), progress=False)


def test_a_chat_template_token_in_a_response_is_a_located_error(processor):
    ex = LongThoughtExample(id="y", question="q", thought="t<|image_pad|>", solution="s")
    with pytest.raises(RecordError, match=r"example 'y': the response contains the chat-template token\(s\) "
                                          r"<\|image_pad\|>"):
        encode_examples([ex], processor, prompt="plain", system=None, limits=_limits(processor), progress=False)


def test_text_only_and_image_samples_train_together_in_one_batch(tiny_model_dir, processor, data_dir):
    """One padded batch with a text-only and an image sample: finite loss, gradients reach LM and merger."""
    from virgo.modeling.load import load_model

    cfg = load_config(None, [f"train_files={data_dir / 'train.jsonl'}", "image_max_pixels=3136", "output_dir=x",
                             "chat_template=qwen2vl"])
    ds, rep = build_dataset(cfg, processor, progress=False)
    assert rep.text_only and rep.with_images
    text_i = next(i for i, s in enumerate(ds.samples) if not s.images)
    image_i = next(i for i, s in enumerate(ds.samples) if s.images)
    tok = processor.tokenizer
    collate = SFTCollator(pad_token_id=tok.pad_token_id, image_token_id=tok.convert_tokens_to_ids(IMAGE_TOKEN))
    batch = collate([ds[text_i], ds[image_i]])
    assert batch["pixel_values"].shape[0] == 64 and batch["image_grid_thw"].tolist() == [[1, 8, 8]]
    assert batch["attention_mask"][0].sum() == len(ds.samples[text_i])
    assert (batch["mm_token_type_ids"][1] == 1).sum() == 16 and (batch["mm_token_type_ids"][0] == 0).all()

    model = load_model(tiny_model_dir)
    model.train()
    loss = model(**batch).loss
    assert torch.isfinite(loss)
    loss.backward()
    merger = model.model.visual.merger.mlp[0].weight.grad
    lm = model.model.language_model.layers[0].mlp.up_proj.weight.grad
    assert merger is not None and merger.abs().sum() > 0
    assert lm is not None and lm.abs().sum() > 0


def test_image_max_pixels_caps_a_large_image_and_the_processor_agrees(processor, tmp_path):
    """Every fixture image is 32x32, under any cap: here a 200x120 image must be shrunk to the configured cap."""
    Image.new("RGB", (200, 120), (30, 60, 220)).save(tmp_path / "big.png")
    path = tmp_path / "big.jsonl"
    write_records(path, [LongThoughtExample(id="big", question="How many?", thought="t", solution="s",
                                            images=["big.png"])])
    ip = processor.image_processor
    token_pixels = (ip.patch_size * ip.merge_size) ** 2  # one LM token covers a 2x2 block of 4x4 patches

    def dataset(cap):
        cfg = load_config(None, [f"train_files={path}", f"image_max_pixels={cap}", "output_dir=x",
                                 "chat_template=qwen2vl"])
        return build_dataset(cfg, processor, progress=False)[0]

    capped, uncapped = dataset(48 * 48), dataset("null")  # null: the processor's own limit (56x56)
    (planned,) = capped.samples[0].image_tokens
    item = capped[0]  # decodes and resizes the pixels through the processor
    assert int(item["image_grid_thw"].prod()) // ip.merge_size ** 2 == planned
    assert int((item["input_ids"] == processor.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)).sum()) == planned
    assert planned * token_pixels <= 48 * 48
    (processor_limit,) = uncapped.samples[0].image_tokens
    full_size = image_token_count(processor, str(tmp_path / "big.png"), ImageLimits(1, 200 * 120))
    assert planned < processor_limit < full_size == 200 * 120 // token_pixels


def test_a_custom_chat_template_renders_the_training_samples(processor, data_dir, tmp_path):
    custom = tmp_path / "slow.jinja"
    custom.write_text(load_chat_template().replace("You are a helpful assistant.", "You think slowly."))
    ex = SFTExample(id="s", question="Q?", response="A.")
    (default,) = encode_examples([ex], processor, prompt="plain", system=None, limits=_limits(processor),
                                 progress=False)
    (mine,) = encode_examples([ex], processor, prompt="plain", system=None, limits=_limits(processor),
                              chat_template=str(custom), progress=False)
    assert format_sample(default, processor.tokenizer).startswith("<|im_start|>system\nYou are a helpful")
    assert format_sample(mine, processor.tokenizer) == (
        "<|im_start|>system\nYou think slowly.<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n"
        "<|im_start|>assistant\n\u27e6A.<|im_end|>\u27e7")
    # The config key reaches the dataset that training uses.
    cfg = load_config(None, [f"train_files={data_dir / 'train.jsonl'}", f"chat_template={custom}",
                             "max_samples=2", "output_dir=x"])
    ds, _ = build_dataset(cfg, processor, progress=False)
    assert all(format_sample(s, processor.tokenizer).startswith("<|im_start|>system\nYou think slowly.")
               for s in ds.samples)
