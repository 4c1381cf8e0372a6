"""Sequence parallelism (`virgo.train.sequence`): a packed row split over the ranks of a group trains the model the
1-process run trains, for every family, with real processes over gloo.

The runs: packed rows under a token budget, text-only and image samples mixed. 2 ranks with
``sequence_parallel_size=2`` (one group: both ranks get every row and each runs the decoder on half of it) against
1 process on the same rows; 4 ranks in 2 groups of 2 against 1 process with 2 rows per step (accumulation 2); a
split run through `virgo train`, resumed from a checkpoint, against an uninterrupted one. The
probe below (this file under torchrun) records, per rank, the row length the model got and the token count each
decoder layer ran on, so the test sees the split instead of assuming it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch
from procs import run_group, saved_keys

REPO = Path(__file__).resolve().parents[1]
STEPS = 3
REL_TOL = 1e-4  # float32 sums in another order (attention split by heads, gradients summed over ranks)
# Plain SGD: the weights are then linear in the gradients, so they can be compared tightly (Adam divides each
# gradient by its own running size, which turns float noise in a near-zero gradient into a step of ~lr).
COMMON = ["image_max_pixels=3136", "max_length=1024", f"max_steps={STEPS}", "logging_steps=1", "optim=sgd",
          "learning_rate=0.1",
          "warmup_steps=0", "lr_scheduler_type=constant", "save_strategy=no", "packing=true", "packing_budget=700",
          "torch_threads=1", "progress=false", "report_to=none", "seed=0"]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO / "src")}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    from virgo.train.fixture import make_tiny_longthought

    return make_tiny_longthought(tmp_path_factory.mktemp("sp-data"), n=24, image_frac=0.5, seed=5)


def _losses(out: Path) -> dict[int, float]:
    from virgo.train.callbacks import read_log

    return {r["step"]: r["loss"] for r in read_log(out / "train_log.jsonl") if "loss" in r}


def _weights(out: Path) -> dict[str, torch.Tensor]:
    """The saved model's weights as transformers loads them."""
    from virgo.modeling.load import load_model

    return load_model(out).state_dict()


def _one_process(model: Path, data: Path, out: Path, *extra: str) -> dict[int, float]:
    from virgo.train.config import load_config
    from virgo.train.sft import train

    torch.set_num_threads(1)
    train(load_config(None, [f"model_name_or_path={model}", f"train_files={data}", f"output_dir={out}", *COMMON,
                             *extra]))
    return _losses(out)


def _ranks(out: Path, model: Path, data: Path, nproc: int, *extra: str) -> list[dict]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", __file__,
           "probe", str(out), f"model_name_or_path={model}", f"train_files={data}", f"output_dir={out}", *COMMON,
           *extra]
    proc = run_group(cmd, cwd=REPO, env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return [json.loads((out / "probe" / f"rank{r}.json").read_text()) for r in range(nproc)]


def _assert_same_training(ref: Path, got: Path, steps: int = STEPS) -> None:
    want, have = _losses(ref), _losses(got)
    assert sorted(want) == sorted(have) == list(range(1, steps + 1))
    for step in want:
        assert have[step] == pytest.approx(want[step], rel=REL_TOL), (step, have[step], want[step])
    a, b, start = _weights(ref), _weights(got), _weights(ref.parent / "model")
    assert a.keys() == b.keys() and saved_keys(got) == saved_keys(ref)  # saved in one layout, ZeRO-3 included
    differ = max(float((a[k] - b[k]).abs().max()) for k in a)
    moved = max(float((a[k] - start[k]).abs().max()) for k in a if k in start)
    assert moved > 1e-3 and differ < 1e-4 * moved, f"weights moved by up to {moved}, differ by up to {differ}"


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
def test_a_row_split_over_two_ranks_trains_as_one_process(family, data_file, tmp_path):
    from virgo.modeling.tiny import make_tiny_model

    model = make_tiny_model(tmp_path / "model", family=family)
    _one_process(model, data_file, tmp_path / "ref")
    ranks = _ranks(tmp_path / "sp", model, data_file, 2, "sequence_parallel_size=2")
    _assert_same_training(tmp_path / "ref", tmp_path / "sp")
    # both ranks got the same rows (images among them), and each layer ran on half of each row
    assert ranks[0]["rows"] == ranks[1]["rows"] and any(ranks[0]["images"])
    for r in ranks:  # the loader may have made the next row already: the first STEPS are the trained ones
        assert len(r["rows"]) >= STEPS
        assert r["layer_tokens"] == [length // 2 for length in r["padded"][:STEPS] for _ in range(r["layers"])]
    info = json.loads((tmp_path / "sp" / "run_info.json").read_text())
    assert info["sequence_parallel_size"] == 2 and info["global_batch"] == 1
    log = [r for r in _log(tmp_path / "sp") if "tokens_per_s" in r]
    ref = [r for r in _log(tmp_path / "ref") if "tokens_per_s" in r]
    # tokens are counted once per row, not once per rank of its group
    assert [r["num_input_tokens_seen"] for r in log] == [r["num_input_tokens_seen"] for r in ref]


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize("launch", ["zero3", "fsdp2"])
def test_sequence_parallel_under_sharded_parameters(launch, data_file, tmp_path):
    """The paper's launch (ZeRO-3) and FSDP2 with a row split over both ranks, the LM head and loss as one chunked op
    on each rank's share (linear_cross_entropy, for long rows): the 1-process model of the plain head again."""
    from virgo.modeling.tiny import make_tiny_model

    model = make_tiny_model(tmp_path / "model")
    _one_process(model, data_file, tmp_path / "ref")
    ranks = _ranks(tmp_path / "sp", model, data_file, 2, "sequence_parallel_size=2", f"launch={launch}",
                   "linear_cross_entropy=true")
    assert ranks[0]["rows"] == ranks[1]["rows"]
    assert json.loads((tmp_path / "sp" / "run_info.json").read_text())["linear_cross_entropy"] is True
    _assert_same_training(tmp_path / "ref", tmp_path / "sp")


@pytest.mark.slow
@pytest.mark.distributed
def test_sequence_parallel_with_lora_and_a_dev_set(data_file, tmp_path):
    """LoRA (the adapters wrap the split layers), a dev loss at every step (evaluation runs unsplit, each rank on
    its own dev rows) and rows made in a loader process: the 1-process training losses, dev losses and merged
    weights."""
    from virgo.modeling.tiny import make_tiny_model

    model = make_tiny_model(tmp_path / "model")
    # one dev sample per batch: the Trainer averages per-batch means, which then weigh alike however ranks split them
    extra = ["finetuning_type=lora", "lora_rank=4", "val_size=4", "eval_strategy=steps", "eval_steps=1",
             "per_device_eval_batch_size=1"]
    _one_process(model, data_file, tmp_path / "ref", *extra)
    # rows made in a loader process: the collator travels there without the process group
    _ranks(tmp_path / "sp", model, data_file, 2, "sequence_parallel_size=2", "dataloader_num_workers=1", *extra)
    _assert_same_training(tmp_path / "ref", tmp_path / "sp")
    dev = {name: {r["step"]: r["eval_loss"] for r in _log(tmp_path / name) if "eval_loss" in r}
           for name in ("ref", "sp")}
    assert sorted(dev["sp"]) == list(range(1, STEPS + 1))
    for step, loss in dev["ref"].items():
        assert dev["sp"][step] == pytest.approx(loss, rel=REL_TOL)


@pytest.mark.slow
@pytest.mark.distributed
def test_a_split_run_resumes_through_virgo_train(data_file, tmp_path):
    """`virgo train -n 2 sequence_parallel_size=2`, stopped after a checkpoint at step 2 and resumed to step 4, trains
    what one uninterrupted split run trains: the rows after the resume are the ones the group had next."""
    from virgo.modeling.tiny import make_tiny_model

    model = make_tiny_model(tmp_path / "model")

    def virgo_train(out: Path, steps: int, *extra: str) -> None:
        cmd = [sys.executable, "-m", "virgo", "train", "--num-processes", "2", "--output-dir", str(out),
               f"model_name_or_path={model}", f"train_files={data_file}", *COMMON, f"max_steps={steps}",
               "sequence_parallel_size=2", "save_strategy=steps", "save_steps=2", *extra]
        proc = run_group(cmd, cwd=REPO, env=_env(), timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]

    virgo_train(tmp_path / "whole", 4)
    virgo_train(tmp_path / "parts", 2)
    virgo_train(tmp_path / "parts", 4, "resume_from_checkpoint=auto")
    whole, parts = _losses(tmp_path / "whole"), _losses(tmp_path / "parts")
    assert sorted(whole) == sorted(parts) == [1, 2, 3, 4]
    for step in whole:
        assert parts[step] == pytest.approx(whole[step], rel=REL_TOL), (step, parts[step], whole[step])
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "parts")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6


def _log(out: Path) -> list[dict]:
    from virgo.train.callbacks import read_log

    return read_log(out / "train_log.jsonl")


@pytest.mark.slow
@pytest.mark.distributed
def test_two_groups_of_two_ranks_train_as_one_process_with_two_rows_a_step(data_file, tmp_path):
    """4 ranks: 2 data-parallel groups of 2 sequence-parallel ranks; each group its own rows, the model the one a
    single process trains on the same rows 2 at a time (gradient accumulation 2: the same global batch). Two steps:
    the epoch's 5 rows make two whole rounds (accelerate tops a last round up with the epoch's first row)."""
    from virgo.modeling.tiny import make_tiny_model

    model = make_tiny_model(tmp_path / "model")
    steps = "max_steps=2"
    _one_process(model, data_file, tmp_path / "ref", "gradient_accumulation_steps=2", steps)
    # with gradient checkpointing: the recomputed layers split their inputs and exchange heads again
    ranks = _ranks(tmp_path / "sp", model, data_file, 4, "sequence_parallel_size=2", steps,
                   "gradient_checkpointing=true")
    assert ranks[0]["rows"] == ranks[1]["rows"] and ranks[2]["rows"] == ranks[3]["rows"]
    assert not set(map(tuple, ranks[0]["rows"][:2])) & set(map(tuple, ranks[2]["rows"][:2]))
    _assert_same_training(tmp_path / "ref", tmp_path / "sp", steps=2)


def test_a_rank_gets_its_share_of_the_targets_and_the_padding_is_a_sample_of_its_own(tmp_path):
    """`ShardedRows` without processes: the shares put together are the whole row's shifted targets, a row is
    padded to a multiple of the group with a segment that restarts its positions, and logits_to_keep is cut alike."""
    from virgo.modeling.load import load_model, load_processor
    from virgo.modeling.tiny import make_tiny_model
    from virgo.train.attention import segment_bounds
    from virgo.train.collate import SFTCollator, label_positions
    from virgo.train.data import IGNORE_INDEX, IMAGE_TOKEN
    from virgo.train.packing import rope_index_of
    from virgo.train.sequence import REAL_TOKENS, SequenceGroup, ShardedRows

    model_dir = make_tiny_model(tmp_path / "model")
    model = load_model(model_dir)
    tok = load_processor(model_dir).tokenizer
    # three samples of lengths 5, 4 and 4: a row of 13, not a multiple of 2 or 4
    ids = [torch.arange(10, 10 + n) for n in (5, 4, 4)]
    features = [{"input_ids": x, "labels": torch.where(torch.arange(len(x)) < 2, IGNORE_INDEX, x)} for x in ids]
    base = SFTCollator(pad_token_id=tok.pad_token_id, image_token_id=tok.convert_tokens_to_ids(IMAGE_TOKEN),
                       packing=True, rope_index=rope_index_of(model), logits_at_labels=True)
    whole = base(features)
    for size in (2, 4):
        shares = [ShardedRows(base, SequenceGroup(size, rank), tok.pad_token_id)(features) for rank in range(size)]
        length = shares[0]["input_ids"].shape[-1]
        assert length % size == 0 and 13 <= length < 13 + size
        padded_labels = torch.full((1, length), IGNORE_INDEX)
        padded_labels[:, :13] = whole["labels"]
        want = label_positions(padded_labels)
        assert torch.equal(torch.cat([s["labels"] for s in shares], dim=1),
                           torch.nn.functional.pad(padded_labels[:, 1:], (0, 1), value=IGNORE_INDEX))
        assert torch.equal(torch.cat([s["logits_to_keep"] for s in shares], dim=1), want["logits_to_keep"])
        assert torch.equal(torch.cat([s["shift_labels"] for s in shares]), want["shift_labels"])
        assert [s[REAL_TOKENS] for s in shares] == [13] + [0] * (size - 1)
        for s in shares:  # every rank gets the whole row for the model to merge images and positions over
            assert torch.equal(s["input_ids"][:, :13], whole["input_ids"])
            assert s["position_ids"].shape[-1] == length
        bounds = segment_bounds(shares[0]["position_ids"][0])[0]
        assert bounds[:3] == [(0, 5), (5, 9), (9, 13)] and (bounds[3:] == [(13, length)] if length > 13 else True)


def test_a_group_larger_than_the_launch_is_a_clear_error(data_file, tmp_path):
    import subprocess

    from virgo.modeling.tiny import make_tiny_model

    model = make_tiny_model(tmp_path / "model")
    proc = subprocess.run([sys.executable, "-m", "virgo", "train", "--output-dir", str(tmp_path / "out"),
                           f"model_name_or_path={model}", f"train_files={data_file}", *COMMON,
                           "sequence_parallel_size=2"], cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "the world size (1 process(es)) must be a multiple of it; launch with -n 2" in proc.stderr + proc.stdout


def test_heads_that_cannot_be_shared_are_refused_and_kv_heads_are_repeated():
    from virgo.config import ConfigError
    from virgo.train.config import load_config
    from virgo.train.sequence import kv_repeat

    assert kv_repeat(2, 4, 2) == 1  # the tiny model: 4 heads, 2 key/value heads, 2 ranks
    assert kv_repeat(2, 12, 4) == 2  # Qwen2-VL-2B's 12 heads and 2 key/value heads over 4 ranks
    assert kv_repeat(4, 28, 4) == 1  # Qwen2-VL-7B over 4 ranks
    with pytest.raises(ValueError, match="28 attention heads must divide"):
        kv_repeat(4, 28, 8)
    with pytest.raises(ConfigError, match="packing_budget"):
        load_config(None, ["sequence_parallel_size=2", "packing=true", "output_dir=x"])
    with pytest.raises(ConfigError, match="not block_mask"):
        load_config(None, ["sequence_parallel_size=2", "packing=true", "packing_budget=512",
                           "packed_attention=block_mask", "output_dir=x"])
    load_config(None, ["sequence_parallel_size=2", "packing=true", "packing_budget=512", "output_dir=x"])


# ----------------------------------------------------------------------------- the probe (torchrun runs this file)

def _probe_main(argv: list[str]) -> None:
    """``probe OUT KEY=VALUE ...``: `virgo.train.sft.train`, recording per rank each training row (its samples'
    first tokens), whether it held an image, its padded length, and the tokens each decoder layer ran on."""
    from transformers import TrainerCallback

    from virgo.train import sequence
    from virgo.train.config import load_config
    from virgo.train.freeze import inner_model, unwrap
    from virgo.train.launch import close_process_group
    from virgo.train.sft import train

    out, overrides = Path(argv[0]) / "probe", argv[1:]
    out.mkdir(parents=True, exist_ok=True)
    rank = int(os.environ.get("RANK", "0"))
    seen: dict = {"rows": [], "images": [], "padded": [], "layer_tokens": []}
    call = sequence.ShardedRows.__call__

    def recording(self, features):
        batch = call(self, features)
        seen["rows"].append([int(f["input_ids"].sum()) for f in features])  # a fingerprint of each sample
        seen["images"].append(any(f.get("pixel_values") is not None for f in features))
        seen["padded"].append(int(batch["input_ids"].shape[-1]))
        return batch

    sequence.ShardedRows.__call__ = recording

    class Probe(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            layers = inner_model(unwrap(model)).language_model.layers
            seen["layers"] = len(layers)
            for layer in layers:
                layer.self_attn.register_forward_hook(
                    lambda m, a, kw, o: seen["layer_tokens"].append(int(kw["hidden_states"].shape[1]))
                    if m.training else None, with_kwargs=True)

        def on_train_end(self, args, state, control, **kwargs):
            (out / f"rank{rank}.json").write_text(json.dumps(seen))

    train(load_config(None, overrides), callbacks=[Probe()])
    close_process_group()


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "probe":
    _probe_main(sys.argv[2:])
