"""Token-budget packing: rows are full, every sample is trained exactly once per epoch, the seeded order repeats,
and ``virgo.train.sft.train`` runs with it end to end."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from virgo.train.packing import TokenBudgetBatchSampler, pack_rows


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 300), max_size=60), st.integers(1, 400))
def test_pack_rows_uses_every_sample_once_and_fills_rows(lengths, budget):
    rows = pack_rows(lengths, budget)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    sums = [sum(lengths[i] for i in row) for row in rows]
    for row, total in zip(rows, sums):
        assert total <= budget or len(row) == 1  # only a sample longer than the budget overflows, alone
    # Full rows: no two rows could have been one (so at most one row is half empty or less).
    assert all(a + b > budget for i, a in enumerate(sums) for b in sums[i + 1:])
    assert pack_rows(lengths, budget) == rows  # deterministic


def test_row_order_is_seeded_and_new_each_epoch():
    lengths = [(i * 37) % 200 + 5 for i in range(100)]
    a, b = TokenBudgetBatchSampler(lengths, 400, seed=3), TokenBudgetBatchSampler(lengths, 400, seed=3)
    first = list(a)
    assert first == list(b)  # same seed, same epoch: same order
    a.set_epoch(1)
    second = list(a)
    assert second != first and sorted(map(sorted, second)) == sorted(map(sorted, first))
    b.set_epoch(1)
    assert list(b) == second
    assert list(TokenBudgetBatchSampler(lengths, 400, seed=4)) != first
    for epoch_rows in (first, second):
        assert sorted(i for row in epoch_rows for i in row) == list(range(100))


@pytest.fixture(scope="module")
def row_data(tmp_path_factory):
    from virgo.train.fixture import make_tiny_longthought

    return make_tiny_longthought(tmp_path_factory.mktemp("rows-data"), n=20, image_frac=0.5, long_frac=0.3,
                                 long_factor=6, seed=3)


def _cfg(model_dir, data, out, *extra):
    from virgo.modeling.family import resolve_chat_template
    from virgo.train.config import load_config

    return load_config(None, [
        f"model_name_or_path={model_dir}", f"train_files={data}", f"output_dir={out}", "image_max_pixels=3136",
        f"chat_template={resolve_chat_template('auto', model_dir)}",
        "cutoff_len=1024", "learning_rate=2e-3", "warmup_ratio=0", "logging_steps=1", "save_strategy=no",
        "torch_threads=1", "seed=5", "packing=true", "packing_budget=900", "progress=false", *extra])


def _recorded_run(model_dir, data, out, seed):
    """Train 2 epochs through the real Trainer loop; returns the rows (as token tuples per sample) it trained on."""
    from virgo.modeling.load import load_model_and_processor
    from virgo.train.attention import use_packed_attention
    from virgo.train.collate import SFTCollator
    from virgo.train.data import IMAGE_TOKEN, build_dataset
    from virgo.train.packing import rope_index_of
    from virgo.train.sft import runtime_args
    from virgo.train.trainer import SFTTrainer

    cfg = _cfg(model_dir, data, out, "num_train_epochs=2", f"seed={seed}")
    model, processor = load_model_and_processor(model_dir)
    use_packed_attention(model)
    ds, _ = build_dataset(cfg, processor, progress=False)
    tok = processor.tokenizer
    seen: list[list[tuple[int, ...]]] = []

    class Recording(SFTCollator):
        def __call__(self, features):
            seen.append([tuple(f["input_ids"].tolist()) for f in features])
            return super().__call__(features)

    collator = Recording(pad_token_id=tok.pad_token_id, image_token_id=tok.convert_tokens_to_ids(IMAGE_TOKEN),
                         packing=True, rope_index=rope_index_of(model))
    sampler = TokenBudgetBatchSampler([len(s) for s in ds.samples], cfg.packing_budget, seed=seed)
    trainer = SFTTrainer(model=model, args=runtime_args(cfg), train_dataset=ds, data_collator=collator,
                         row_sampler=sampler)
    trainer.train()
    everything = Counter(tuple(s.input_ids.tolist()) for s in ds.samples)
    return seen, everything, len(sampler), trainer.state.global_step


def test_trainer_sees_every_sample_once_per_epoch_in_seeded_order(tiny_model_dir, row_data, tmp_path):
    seen, everything, n_rows, steps = _recorded_run(tiny_model_dir, row_data, tmp_path / "a", seed=5)
    assert 2 <= n_rows < 20 and steps == 2 * n_rows and len(seen) == 2 * n_rows  # one row per step
    epochs = [seen[:n_rows], seen[n_rows:]]
    for rows in epochs:
        assert Counter(sample for row in rows for sample in row) == everything
        assert all(sum(map(len, row)) <= 900 for row in rows)
    assert epochs[0] != epochs[1]  # a new order each epoch
    again, _, _, _ = _recorded_run(tiny_model_dir, row_data, tmp_path / "b", seed=5)
    assert again == seen  # the same seed trains on the same rows in the same order


def test_train_with_token_budget_end_to_end(tiny_model_dir, row_data, tmp_path, capsys):
    from virgo.train.callbacks import read_log
    from virgo.train.sft import train

    out = train(_cfg(tiny_model_dir, row_data, tmp_path / "run", "num_train_epochs=1"))
    printed = capsys.readouterr().out
    assert "packed attention: sdpa_segments" in printed
    assert "token-budget packing: 20 samples in" in printed
    losses = [r["loss"] for r in read_log(Path(out) / "train_log.jsonl") if "loss" in r]
    assert losses and all(math.isfinite(v) for v in losses)
    assert "packing_budget: 900" in (Path(out) / "train_config.yaml").read_text()
    config = json.loads((Path(out) / "config.json").read_text())
    assert "virgo_sdpa_segments" not in json.dumps(config)  # the saved model loads anywhere


def test_interrupted_token_budget_run_resumes_on_the_same_rows(tiny_model_dir, row_data, tmp_path):
    """Stopped in the second epoch and resumed from a checkpoint there: the same rows in the same order follow, so
    every step's loss equals the uninterrupted run's."""
    from transformers import TrainerCallback

    from virgo.modeling.load import load_processor
    from virgo.train.callbacks import read_log
    from virgo.train.data import build_dataset
    from virgo.train.sft import train

    probe = _cfg(tiny_model_dir, row_data, tmp_path / "probe")
    ds, _ = build_dataset(probe, load_processor(tiny_model_dir), progress=False)
    n_rows = len(TokenBudgetBatchSampler([len(s) for s in ds.samples], 900, seed=5))
    save, stop = n_rows + 1, n_rows + 3  # both in the second epoch

    class Interrupt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == stop:
                raise KeyboardInterrupt("simulated interruption")

    extra = ("num_train_epochs=2", "save_strategy=steps", f"save_steps={save}")
    ref = train(_cfg(tiny_model_dir, row_data, tmp_path / "ref", *extra))
    cfg = _cfg(tiny_model_dir, row_data, tmp_path / "cut", *extra)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, callbacks=[Interrupt()])
    out = train(cfg)  # resume_from_checkpoint=auto: checkpoint-{save}

    def losses(d):
        return {r["step"]: r["loss"] for r in read_log(Path(d) / "train_log.jsonl") if "loss" in r}

    want, got = losses(ref), losses(out)
    assert sorted(got) == sorted(want) == list(range(1, 2 * n_rows + 1))
    for step in want:
        assert got[step] == pytest.approx(want[step], abs=1e-5), step
