"""Padding-free packing, for each Qwen VL family: positions restart per sample, M-RoPE is right for images,
per-sample losses and gradients are unchanged, under the old block-mask attention, the per-segment attention and
the GPU's flash-attn varlen path (run here through transformers' own integration with a CPU reference kernel) alike,
in micro-batches of a fixed number of samples and in token-budget rows.

Tolerance: fp32 on CPU; per-sample losses agree within 1e-5 absolute (measured about 5e-7), gradients within 1e-5
absolute (relative to their scale); only the order of floating-point sums differs between the paths.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch
import torch.nn.functional as F

from virgo.train.attention import language_model_attention, use_packed_attention
from virgo.train.collate import SFTCollator
from virgo.train.config import load_config
from virgo.train.data import IMAGE_TOKEN, build_dataset
from virgo.train.fixture import make_tiny_longthought
from virgo.train.headloss import HeadLoss
from virgo.train.packing import pack_rows, rope_index_of

PATHS = ("block_mask", "sdpa_segments")
FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")


@pytest.fixture(scope="module", params=FAMILIES)
def setup(request, tiny_model_dir, tmp_path_factory):
    """Per family: a tiny model, a dataset with long-tailed lengths and images (some samples 10x longer than
    others), and the padded and packed collators."""
    from virgo.modeling.family import resolve_chat_template
    from virgo.modeling.load import load_model_and_processor
    from virgo.modeling.tiny import make_tiny_model

    family = request.param
    model_dir = tiny_model_dir if family == "qwen2_vl" else make_tiny_model(
        tmp_path_factory.mktemp(f"tiny-{family}") / "model", family=family, size="xs")
    d = tmp_path_factory.mktemp("pack-data")
    path = make_tiny_longthought(d, n=10, image_frac=0.5, long_frac=0.3, long_factor=10, seed=1)
    model, processor = load_model_and_processor(model_dir)
    model.eval()
    template = resolve_chat_template("auto", model_dir)  # the family's own template, as `train` resolves it
    cfg = load_config(None, [f"train_files={path}", "image_max_pixels=3136", "output_dir=x",
                             f"chat_template={template}"])
    ds, _ = build_dataset(cfg, processor, progress=False)
    tok = processor.tokenizer
    kw = {"pad_token_id": tok.pad_token_id, "image_token_id": tok.convert_tokens_to_ids(IMAGE_TOKEN),
          "video_token_id": tok.convert_tokens_to_ids("<|video_pad|>")}
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


def _spans(lengths):
    starts = [sum(lengths[:i]) for i in range(len(lengths))]
    return [(i, 0, n) for i, n in enumerate(lengths)], [(0, s, s + n) for s, n in zip(starts, lengths)]


def _losses_both_ways(model, padded, packed, feats):
    """Per-sample losses of ``feats`` as a padded batch and as one packed row, and both model outputs."""
    lengths = [len(f["input_ids"]) for f in feats]
    pb, kb = padded(feats), packed(feats)
    with torch.no_grad():
        out_p, out_k = model(**pb), model(**kb)
    padded_spans, packed_spans = _spans(lengths)
    lp = _per_sample_losses(out_p.logits, pb["labels"], padded_spans)
    lk = _per_sample_losses(out_k.logits, kb["labels"], packed_spans)
    return lp, lk, out_p, out_k


@pytest.mark.parametrize("path", PATHS)
def test_per_sample_losses_equal_with_and_without_packing(setup, path):
    model, ds, padded, packed = setup
    use_packed_attention(model, path)
    feats = _features(ds)
    lp, lk, out_p, out_k = _losses_both_ways(model, padded, packed, feats)
    assert torch.allclose(lp, lk, atol=1e-5, rtol=0), (lp, lk)
    assert abs(out_p.loss.item() - out_k.loss.item()) < 1e-5
    # Without per-sample positions the losses would differ (the check above is not vacuous).
    kb = packed(feats)
    naive = {k: v for k, v in kb.items() if k != "position_ids"}
    with torch.no_grad():
        out_n = model(**naive)
    ln = _per_sample_losses(out_n.logits, kb["labels"], _spans([len(f["input_ids"]) for f in feats])[1])
    assert not torch.allclose(lp[1:], ln[1:], atol=1e-3)


@pytest.mark.parametrize("path", PATHS)
def test_gradients_equal_with_and_without_packing(setup, path):
    model, ds, padded, packed = setup
    use_packed_attention(model, path)
    feats = _features(ds)
    _assert_same_gradients(model, padded(feats), packed(feats))


def _loss_and_gradients(model, batch, **kw):
    model.zero_grad()
    out = model(**batch, **kw)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    return out, grads


def _assert_same_gradients(model, batch_a, batch_b, **kw):
    """Both batches give the same loss and gradients; returns the two outputs."""
    (out_a, ga), (out_b, gb) = _loss_and_gradients(model, batch_a, **kw), _loss_and_gradients(model, batch_b, **kw)
    assert abs(out_a.loss.item() - out_b.loss.item()) < 1e-5
    assert ga.keys() == gb.keys() and any("layers.0.self_attn.q_proj" in n for n in ga)
    for name, g in ga.items():  # 1e-5 absolute, or relative to the gradient's scale where it exceeds 1
        assert (g - gb[name]).abs().max().item() <= 1e-5 * max(g.abs().max().item(), 1.0), name
    return out_a, out_b


@pytest.mark.parametrize("packing", [False, True], ids=["padded", "packed"])
def test_logits_only_at_labels_keep_the_loss_and_gradients(setup, packing):
    """``logits_at_labels``: the LM head runs only where the next token has a label; the loss (as the Trainer
    computes it, summed over num_items_in_batch, and as a mean) and every gradient are unchanged."""
    model, ds, padded, packed = setup
    use_packed_attention(model, "sdpa_segments")
    full = packed if packing else padded
    lean = dataclasses.replace(full, logits_at_labels=True)
    feats = _features(ds)
    batch, lean_batch = full(feats), lean(feats)
    targets = batch["labels"][:, 1:]
    n = int((targets != -100).sum())
    keep = lean_batch["logits_to_keep"]
    assert keep.dtype == torch.bool and keep.shape == batch["input_ids"].shape and int(keep.sum()) == n
    assert n < keep.numel() - len(feats) * 10  # prompts and images drop out: not vacuous
    assert torch.equal(lean_batch["shift_labels"], targets[targets != -100])
    for kw in ({"num_items_in_batch": torch.tensor(n)}, {}):
        out_full, out_lean = _assert_same_gradients(model, batch, lean_batch, **kw)
        assert out_full.logits.shape[:-1] == batch["input_ids"].shape and out_lean.logits.shape[0] == n


@pytest.mark.parametrize("packing", [False, True], ids=["padded", "packed"])
def test_linear_cross_entropy_keeps_the_loss_and_gradients(setup, packing):
    """``linear_cross_entropy``: while targets are armed the head returns one loss per kept position (torch's
    chunked op, no [positions, vocabulary] logits) and the loss and every gradient equal the logits path's, summed
    over num_items_in_batch and as a mean; unarmed, the model's head and loss are exactly the plain ones."""
    model, ds, padded, packed = setup
    use_packed_attention(model, "sdpa_segments")
    batch = dataclasses.replace(packed if packing else padded, logits_at_labels=True)(_features(ds))
    n = batch["shift_labels"].numel()
    variants = ({"num_items_in_batch": torch.tensor(n)}, {})
    plain = [_loss_and_gradients(model, batch, **kw) for kw in variants]
    head_loss = HeadLoss(model)
    try:
        for kw, (ref, ref_grads) in zip(variants, plain):
            out, grads = _loss_and_gradients(model, batch, **kw)  # not armed: the plain path, bit for bit
            assert torch.equal(out.logits, ref.logits) and out.loss.item() == ref.loss.item()
            with head_loss.targets(batch["shift_labels"]):
                out, grads = _loss_and_gradients(model, batch, **kw)
            assert out.logits.shape == (n,) and ref.logits.shape == (n, model.config.text_config.vocab_size)
            assert abs(out.loss.item() - ref.loss.item()) < 1e-5
            assert grads.keys() == ref_grads.keys()  # the head's weight (tied to the embedding here) included
            for name, g in ref_grads.items():
                assert (g - grads[name]).abs().max().item() <= 1e-5 * max(g.abs().max().item(), 1.0), name
    finally:
        head_loss.remove()
    assert torch.equal(model(**batch).logits, plain[0][0].logits)  # removed: the plain head again


def test_linear_cross_entropy_sums_half_precision_losses_in_fp32(setup):
    """In bf16 the per-token losses are summed in fp32: the loss stays within bf16's rounding of the logits
    path's (torch's own summed reduction, accumulated in bf16, was 4% off)."""
    import copy

    model, ds, _, packed = setup
    half = copy.deepcopy(model).to(torch.bfloat16)
    batch = dataclasses.replace(packed, logits_at_labels=True)(_features(ds))
    batch["pixel_values"] = batch["pixel_values"].to(torch.bfloat16)
    with torch.no_grad():
        ref = half(**batch).loss.item()
        head_loss = HeadLoss(half)
        with head_loss.targets(batch["shift_labels"]):
            got = half(**batch).loss
    assert got.dtype == torch.float32 and got.item() == pytest.approx(ref, rel=1e-2)


def test_token_budget_rows_keep_per_sample_losses(setup):
    """Rows built by the token budget (several samples of mixed lengths and images per row) lose nothing."""
    model, ds, padded, packed = setup
    use_packed_attention(model, "sdpa_segments")
    lengths = [len(s) for s in ds.samples]
    budget = max(lengths) + min(lengths) + 50  # the longest sample shares its row with at least one other
    rows = pack_rows(lengths, budget)
    assert sorted(i for row in rows for i in row) == list(range(len(ds)))
    assert any(len(row) >= 3 for row in rows) and any(ds.samples[i].images for row in rows for i in row)
    for row in rows:
        feats = [ds[i] for i in row]
        assert sum(len(f["input_ids"]) for f in feats) <= budget
        lp, lk, _, _ = _losses_both_ways(model, padded, packed, feats)
        assert torch.allclose(lp, lk, atol=1e-5, rtol=0), (row, lp, lk)


def test_segments_path_builds_no_row_mask(setup):
    """The block-mask path materialises [1, 1, L, L]; the per-segment path hands the layers no mask at all."""
    from transformers.masking_utils import create_causal_mask

    model, ds, _, packed = setup
    batch = packed(_features(ds))
    length = batch["input_ids"].shape[1]
    text = batch["position_ids"][0]
    embeds = torch.zeros(1, length, model.config.text_config.hidden_size)
    masks = {}
    for path in PATHS:
        use_packed_attention(model, path)
        masks[path] = create_causal_mask(config=model.config.text_config, inputs_embeds=embeds, attention_mask=None,
                                         past_key_values=None, position_ids=text)
    assert language_model_attention(model) == "virgo_sdpa_segments"
    assert masks["block_mask"].shape == (1, 1, length, length)
    assert masks["sdpa_segments"] is None


class CpuFlashVarlen:
    """flash-attn's functions as transformers calls them (their documented signatures: ``flash_attn_varlen_func`` on
    [total, heads, dim] tensors with ``cu_seqlens``, ``flash_attn_func`` on [batch, length, heads, dim]), computed on
    CPU by SDPA per sequence. The CUDA kernel cannot run here; with this reference in its place, everything around it
    runs as on a GPU with flash-attn: transformers' flash_attention_2 integration, its packed-row detection from the
    position ids the model hands its layers, the cu_seqlens it derives, and Virgo's collator and mask-free rows.
    Records the cu_seqlens of every varlen call."""

    def __init__(self) -> None:
        self.cu_seqlens: list[list[int]] = []

    def varlen(self, q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p=0.0,
               softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0, alibi_slopes=None,
               deterministic=False, return_attn_probs=False):
        assert torch.equal(cu_seqlens_q, cu_seqlens_k) and dropout_p == 0.0 and window_size == (-1, -1)
        bounds = cu_seqlens_q.tolist()
        self.cu_seqlens.append(bounds)
        parts = [F.scaled_dot_product_attention(*(t[s:e].transpose(0, 1)[None] for t in (q, k, v)), is_causal=causal,
                                                scale=softmax_scale, enable_gqa=True)[0].transpose(0, 1)
                 for s, e in itertools.pairwise(bounds)]
        return torch.cat(parts)

    def dense(self, q, k, v, dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0,
              alibi_slopes=None, deterministic=False, return_attn_probs=False):
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=softmax_scale,
                                              enable_gqa=True).transpose(1, 2)


def _flash_varlen_on_cpu(model, monkeypatch) -> CpuFlashVarlen:
    """The language model on transformers' flash_attention_2 with the CPU reference as the loaded flash-attn (what
    ``use_packed_attention(model, "flash_varlen")`` sets on a GPU; on CPU it refuses, rightly)."""
    import transformers.modeling_flash_attention_utils as fau

    ref = CpuFlashVarlen()
    loaded = {"_flash_fn": ref.dense, "_flash_varlen_fn": ref.varlen, "_flash_with_kvcache_fn": None,
              "_pad_fn": fau._pad_input, "_unpad_fn": fau._unpad_input,
              "_process_flash_kwargs_fn": fau._lazy_define_process_function(ref.varlen),
              "_loaded_implementation": "flash_attention_2"}
    for name, value in loaded.items():
        assert hasattr(fau, name), f"transformers moved its flash-attn loading ({name}): update this test"
        monkeypatch.setattr(fau, name, value)
    monkeypatch.setattr(model.config.text_config, "_attn_implementation", "flash_attention_2")
    assert language_model_attention(model) == "flash_attention_2"
    return ref


def test_flash_varlen_path_keeps_per_sample_losses_and_gradients(setup, monkeypatch):
    """The GPU path (``packed_attention=flash_varlen``): a packed row through transformers' flash_attention_2 gives
    each sample its own sequence (cu_seqlens at the sample boundaries, in every layer) and the per-sample losses and
    gradients of the padded batch."""
    model, ds, padded, packed = setup
    use_packed_attention(model, "block_mask")  # the reference: padded, transformers' sdpa
    feats = _features(ds)
    lengths = [len(f["input_ids"]) for f in feats]
    pb, kb = padded(feats), packed(feats)
    ref_out, ref_grads = _loss_and_gradients(model, pb)
    lp = _per_sample_losses(ref_out.logits, pb["labels"], _spans(lengths)[0])

    flash = _flash_varlen_on_cpu(model, monkeypatch)
    out, grads = _loss_and_gradients(model, kb)
    lk = _per_sample_losses(out.logits, kb["labels"], _spans(lengths)[1])
    bounds = [0, *itertools.accumulate(lengths)]
    assert flash.cu_seqlens == [bounds] * model.config.text_config.num_hidden_layers
    assert torch.allclose(lp, lk, atol=1e-5, rtol=0), (lp, lk)
    assert abs(ref_out.loss.item() - out.loss.item()) < 1e-5
    assert grads.keys() == ref_grads.keys()
    for name, g in ref_grads.items():
        assert (g - grads[name]).abs().max().item() <= 1e-5 * max(g.abs().max().item(), 1.0), name
