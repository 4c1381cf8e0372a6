"""Packed attention: sample boundaries come from the position restarts, the path is picked from the machine, and a
model left on the per-segment implementation still generates exactly as with sdpa. (Per-sample losses and
gradients under each path, for each Qwen VL family, are in test_train_packing.py.)"""

from __future__ import annotations

import pytest
import torch

from virgo.train.attention import SEGMENTS, choose, language_model_attention, segment_bounds, use_packed_attention


def test_segment_bounds_follow_position_restarts():
    pos = torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3]])
    assert segment_bounds(pos) == [[(0, 3), (3, 5), (5, 9)]]
    assert segment_bounds(torch.arange(6)[None]) == [[(0, 6)]]


def test_path_is_picked_from_the_machine():
    assert choose("auto", cuda=False, flash_available=False).path == "sdpa_segments"
    assert choose("auto", cuda=True, flash_available=True, half_precision=True).implementation == "flash_attention_2"
    # flash-attn only runs in half precision: an fp32 run on a GPU takes the per-segment path
    assert choose("auto", cuda=True, flash_available=True, half_precision=False).path == "sdpa_segments"
    assert choose("block_mask", cuda=False).implementation == "sdpa"
    with pytest.raises(ValueError, match="needs a CUDA device and the flash-attn package"):
        choose("flash_varlen", cuda=False, flash_available=False, half_precision=True)
    with pytest.raises(ValueError, match="must be one of"):
        choose("flex")


def test_only_the_language_model_switches(tiny_model_dir):
    from virgo.modeling.load import load_model

    model = load_model(tiny_model_dir)
    choice = use_packed_attention(model)
    assert choice.path == "sdpa_segments" and "CPU" in choice.describe()  # this machine has no GPU
    assert language_model_attention(model) == SEGMENTS
    assert model.config.vision_config._attn_implementation == "sdpa"  # the vision tower keeps its own


def test_model_on_segments_still_generates_like_sdpa(tiny_model_dir):
    """Generation (a left-padded batch, then a KV cache and one query token at a time) is not a packed row: it
    takes transformers' sdpa path, padding mask included."""
    from virgo.modeling.load import load_model

    model = load_model(tiny_model_dir).eval()
    prompt = torch.randint(10, 200, (2, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(prompt)
    prompt[1, :4], mask[1, :4] = model.config.pad_token_id, 0  # the second prompt is shorter, padded on the left
    kw = {"input_ids": prompt, "attention_mask": mask, "max_new_tokens": 8, "do_sample": False,
          "pad_token_id": model.config.pad_token_id}
    with torch.no_grad():
        before = model.generate(**kw)
        use_packed_attention(model, "sdpa_segments")
        after = model.generate(**kw)
    assert torch.equal(before, after) and after.shape[1] > prompt.shape[1]
