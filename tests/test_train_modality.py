"""The dummy image of `virgo.train.modality` on each family: a text-only micro-batch runs the vision tower, and the
loss and the gradients of every real parameter are those of the batch without it (the vision side gets exact zeros).
"""

from __future__ import annotations

import pytest
import torch

from virgo.modeling.family import families
from virgo.train.modality import DummyImage, ensure_image, needs_vision_every_step

FAMILIES = [f.name for f in families()]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    from virgo.train.fixture import make_tiny_longthought

    return make_tiny_longthought(tmp_path_factory.mktemp("text-only"), n=6, image_frac=0.0, seed=1)


@pytest.fixture(scope="module", params=FAMILIES)
def setup(request, text_file, tmp_path_factory):
    """(model, processor, dataset of text-only samples, dummy image) for one family."""
    from virgo.modeling.family import get_family
    from virgo.modeling.load import load_model, load_processor
    from virgo.modeling.tiny import make_tiny_model
    from virgo.train.config import load_config
    from virgo.train.data import IMAGE_TOKEN, build_dataset

    torch.set_num_threads(1)
    family = get_family(request.param)
    path = make_tiny_model(tmp_path_factory.mktemp(request.param) / "model", family=family.name)
    processor = load_processor(path)
    cfg = load_config(None, [f"model_name_or_path={path}", f"train_files={text_file}", "output_dir=unused",
                             "image_max_pixels=3136", f"chat_template={family.chat_template}"])
    dataset, _ = build_dataset(cfg, processor, progress=False)
    model = load_model(path).train()
    dummy = DummyImage.for_processor(processor.image_processor, processor.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN))
    return family, model, processor, dataset, dummy


def _loss_and_grads(model, batch):
    model.zero_grad(set_to_none=True)
    out = model(**batch)
    out.loss.backward()
    return out.loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("packing", [False, True], ids=["padded", "packed"])
def test_the_dummy_image_changes_neither_loss_nor_real_gradients(setup, packing):
    from virgo.train.collate import SFTCollator
    from virgo.train.packing import rope_index_of

    _, model, processor, dataset, dummy = setup
    pad = processor.tokenizer.pad_token_id
    # Longest sample first: row 0 has no padding, so the dummy must widen the batch.
    order = sorted(range(len(dataset)), key=lambda i: -len(dataset.samples[i]))[:3]
    features = [dataset[i] for i in order]
    rope = rope_index_of(model) if packing else None
    plain = SFTCollator(pad_token_id=pad, image_token_id=dummy.image_token_id, packing=packing, rope_index=rope)
    with_dummy = SFTCollator(pad_token_id=pad, image_token_id=dummy.image_token_id, packing=packing,
                             rope_index=rope, dummy_image=dummy)
    a, b = plain(features), with_dummy(features)
    assert "pixel_values" not in a and b["pixel_values"].shape == dummy.pixel_values.shape
    assert int((b["input_ids"] == dummy.image_token_id).sum()) == dummy.tokens == 1
    assert b["input_ids"].shape[1] == a["input_ids"].shape[1] + 1  # row 0 was full (or the row grew by a segment)
    assert b["labels"][b["input_ids"] == dummy.image_token_id].eq(-100).all()  # never trained
    assert (b["labels"] != -100).sum() == (a["labels"] != -100).sum()
    loss_a, grads_a = _loss_and_grads(model, a)
    loss_b, grads_b = _loss_and_grads(model, b)
    tower = {n for n in grads_b if n.startswith("model.visual.")}
    # The tower ran (every vision parameter has a gradient: FSDP2 / ZeRO-3 reduce them on every rank) ...
    assert tower == {n for n, _ in model.named_parameters() if n.startswith("model.visual.")}
    assert all(not grads_b[n].any() for n in tower)  # ... and contributed exactly nothing
    assert set(grads_b) - tower == set(grads_a)
    assert loss_b.item() == pytest.approx(loss_a.item(), rel=1e-6)  # float32 rounding: 2e-7 relative measured
    # Equal up to float32 rounding: one more column (or segment) changes the kernels' blocking, not the maths
    # (measured: exactly 0 when row 0 had room for the dummy; at most 3e-8 here, gradients of order 1e-1).
    worst = max((grads_a[n] - grads_b[n]).abs().max().item() for n in grads_a)
    assert worst <= 1e-6, worst


def test_a_batch_with_an_image_is_left_alone(setup):
    _, _, processor, _, dummy = setup
    batch = {"input_ids": torch.tensor([[5, dummy.image_token_id]]), "pixel_values": torch.ones(4, 3),
             "image_grid_thw": torch.tensor([[1, 2, 2]])}
    assert ensure_image(batch, dummy, pad_token_id=processor.tokenizer.pad_token_id) is batch
    assert batch["pixel_values"].eq(1).all()


def test_only_sharded_launches_pay_for_it(tmp_path, monkeypatch):
    import json

    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    monkeypatch.delenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", raising=False)
    assert needs_vision_every_step("zero3", 2) and needs_vision_every_step("fsdp2", 4)
    assert not needs_vision_every_step("ddp", 8)
    assert not needs_vision_every_step("zero3", 1)  # one process gathers nothing
    z2, z3 = tmp_path / "z2.json", tmp_path / "z3.json"
    z2.write_text(json.dumps({"zero_optimization": {"stage": 2}}))
    z3.write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    assert needs_vision_every_step("my-accelerate.yaml", 2, str(z3))
    assert not needs_vision_every_step("my-accelerate.yaml", 2, str(z2))
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")  # accelerate launch with an FSDP config, on GPUs
    assert needs_vision_every_step("my-accelerate.yaml", 2)
