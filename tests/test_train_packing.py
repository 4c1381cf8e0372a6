"""Padding-free packing: positions restart per sample, M-RoPE is right for images, per-sample losses are unchanged."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from virgo.train.collate import SFTCollator
from virgo.train.config import load_config
from virgo.train.data import IMAGE_TOKEN, build_dataset
from virgo.train.fixture import make_tiny_longthought
from virgo.train.packing import rope_index_of


@pytest.fixture(scope="module")
def setup(tiny_model_dir, tmp_path_factory):
    from virgo.modeling.load import load_model_and_processor

    d = tmp_path_factory.mktemp("pack-data")
    # Long-tailed lengths and images: some samples 10x longer than others.
    path = make_tiny_longthought(d, n=10, image_frac=0.5, long_frac=0.3, long_factor=10, seed=1)
    model, processor = load_model_and_processor(tiny_model_dir)
    model.eval()
    cfg = load_config(None, [f"train_files={path}", "image_max_pixels=3136", "output_dir=x"])
    ds, _ = build_dataset(cfg, processor, progress=False)
    tok = processor.tokenizer
    kw = dict(pad_token_id=tok.pad_token_id, image_token_id=tok.convert_tokens_to_ids(IMAGE_TOKEN),
              video_token_id=tok.convert_tokens_to_ids("<|video_pad|>"))
    return model, ds, SFTCollator(**kw), SFTCollator(**kw, packing=True, rope_index=rope_index_of(model))


def _features(ds):
    # A mix: the longest sample, an image sample, and short text samples.
    order = sorted(range(len(ds)), key=lambda i: -len(ds.samples[i]))
    image = [i for i in range(len(ds)) if ds.samples[i].images]
    text = [i for i in reversed(order) if not ds.samples[i].images]  # shortest first
    picks = [order[0], image[0], text[0], image[1], text[1]]
    assert len(set(picks)) == 5 and len(ds.samples[order[0]]) > 5 * len(ds.samples[text[0]])
    return [ds[i] for i in picks]


def _per_sample_losses(logits, labels, spans):
    """Mean next-token loss of each sample, given its (row, start, end) span."""
    out = []
    for row, start, end in spans:
        lg = logits[row, start:end - 1].float()
        lb = labels[row, start + 1:end]
        out.append(F.cross_entropy(lg, lb, ignore_index=-100, reduction="sum") / (lb != -100).sum())
    return torch.stack(out)


def test_packed_positions_restart_and_match_the_model(setup):
    model, ds, _, packed = setup
    feats = _features(ds)
    batch = packed(feats)
    pos = batch["position_ids"]
    lengths = [len(f["input_ids"]) for f in feats]
    assert pos.shape == (4, 1, sum(lengths)) and "attention_mask" not in batch
    start = 0
    for f, n in zip(feats, lengths):
        seg = pos[:, 0, start:start + n]
        assert seg[0].tolist() == list(range(n))  # text positions restart at 0: samples are separate
        ids = f["input_ids"][None]
        types = (ids == model.config.image_token_id).int()
        grid = f.get("image_grid_thw")
        if grid is not None:
            alone, _ = model.model.get_rope_index(ids, mm_token_type_ids=types, image_grid_thw=grid)
            assert torch.equal(seg[1:], alone[:, 0])  # 3-D M-RoPE exactly as for the sample alone
            assert not torch.equal(seg[1], seg[0])  # and really 3-D: image tokens break the 1-D sequence
        else:
            assert torch.equal(seg[1:], seg[0].expand(3, -1))
        start += n


def test_per_sample_losses_equal_with_and_without_packing(setup):
    model, ds, padded, packed = setup
    feats = _features(ds)
    lengths = [len(f["input_ids"]) for f in feats]
    pb, kb = padded(feats), packed(feats)
    with torch.no_grad():
        out_p, out_k = model(**pb), model(**kb)
    starts = [sum(lengths[:i]) for i in range(len(lengths))]
    lp = _per_sample_losses(out_p.logits, pb["labels"], [(i, 0, n) for i, n in enumerate(lengths)])
    lk = _per_sample_losses(out_k.logits, kb["labels"], [(0, s, s + n) for s, n in zip(starts, lengths)])
    assert torch.allclose(lp, lk, atol=1e-5, rtol=0), (lp, lk)
    assert abs(out_p.loss.item() - out_k.loss.item()) < 1e-5
    # Without per-sample positions the losses would differ (the check above is not vacuous).
    naive = {k: v for k, v in kb.items() if k != "position_ids"}
    with torch.no_grad():
        out_n = model(**naive)
    ln = _per_sample_losses(out_n.logits, kb["labels"], [(0, s, s + n) for s, n in zip(starts, lengths)])
    assert not torch.allclose(lp[1:], ln[1:], atol=1e-3)
