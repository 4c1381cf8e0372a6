"""Training at scale on CPU, with real processes over gloo: the paper's text + image mix under ZeRO-3 and FSDP2 for
every family, FSDP2 really sharding the parameters, and a 2-node launch through `virgo train` on localhost.

How each rank gets the micro-batch wanted (rank 0 text-only, rank 1 with an image): the training file alternates
text-only and image examples, ``train_sampling_strategy=sequential`` keeps that order, and with a micro-batch of 1
accelerate hands batch ``i`` of every ``world_size`` consecutive batches to rank ``i``. The probe below (this file
run as a script under torchrun, calling `virgo.train.sft.train` like `python -m virgo.train.sft` does) records
what each rank's collator saw, so the test checks the split instead of assuming it.

Run the mixed-modality figures with: ``OMP_NUM_THREADS=1 python -m pytest -s -p no:cacheprovider
tests/test_train_distributed.py -k mixed`` (each case prints its per-step losses, 2 ranks against 1 process).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from procs import run_group, saved_keys

REPO = Path(__file__).resolve().parents[1]
FAMILIES = ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"]
STEPS = 3
# The 2-rank loss against the 1-process loss on the same global batch, per step: float32 sums taken in another
# order (gradients reduced over ranks, ZeRO-3's flat partitions). Measured: equal to 1e-6 or better.
REL_TOL = 1e-4

COMMON = ["image_max_pixels=3136", "max_length=1024", f"max_steps={STEPS}", "logging_steps=1", "learning_rate=1e-3",
          "warmup_steps=0", "lr_scheduler_type=constant", "save_strategy=no", "train_sampling_strategy=sequential",
          "torch_threads=1", "progress=false", "report_to=none", "seed=0"]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO / "src")}


@pytest.fixture(scope="module")
def mixed_file(tmp_path_factory) -> Path:
    """Text-only and image examples alternating: text, image, text, image ..."""
    from virgo.records import LongThoughtExample, read_records, write_records
    from virgo.train.fixture import make_tiny_longthought

    d = tmp_path_factory.mktemp("mixed")
    records = read_records(make_tiny_longthought(d, n=24, image_frac=0.5, seed=5), LongThoughtExample)
    text, image = [r for r in records if not r.images], [r for r in records if r.images]
    mixed = [x for pair in zip(text, image) for x in pair][: 2 * STEPS + 2]
    write_records(d / "mixed.jsonl", mixed)
    return d / "mixed.jsonl"


@pytest.fixture(scope="module", params=FAMILIES)
def family_model(request, tmp_path_factory) -> tuple[str, Path]:
    from virgo.modeling.tiny import make_tiny_model

    return request.param, make_tiny_model(tmp_path_factory.mktemp(request.param) / "model", family=request.param)


def _one_process_losses(model: Path, mixed_file: Path, out: Path) -> dict[int, float]:
    """One process, micro-batch 2: the same global batches (text + image) as the 2-rank runs."""
    import torch

    from virgo.train.config import load_config
    from virgo.train.sft import train

    torch.set_num_threads(1)
    train(load_config(None, [f"model_name_or_path={model}", f"train_files={mixed_file}", f"output_dir={out}",
                             "per_device_train_batch_size=2", *COMMON]))
    return _losses(out)


@pytest.fixture(scope="module")
def reference(family_model, mixed_file, tmp_path_factory) -> dict[int, float]:
    family, model = family_model
    return _one_process_losses(model, mixed_file, tmp_path_factory.mktemp(f"ref-{family}"))


@pytest.fixture(scope="module")
def qwen2vl_reference(mixed_file, tmp_path_factory) -> tuple[Path, dict[int, float]]:
    """Qwen2-VL and its 1-process losses with the plain LM head and loss."""
    from virgo.modeling.tiny import make_tiny_model

    model = make_tiny_model(tmp_path_factory.mktemp("lce") / "model")
    return model, _one_process_losses(model, mixed_file, tmp_path_factory.mktemp("lce-ref"))


def _probe_run(out: Path, *overrides: str, nproc: int = 2) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", __file__,
           "probe", str(out), f"output_dir={out}", *overrides]
    return run_group(cmd, cwd=REPO, env=_env(), timeout=600)


def _losses(out: Path) -> dict[int, float]:
    from virgo.train.callbacks import read_log

    return {r["step"]: r["loss"] for r in read_log(out / "train_log.jsonl") if "loss" in r}


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize("launch", ["zero3", "fsdp2"])
def test_mixed_text_and_image_micro_batches(family_model, mixed_file, reference, launch, tmp_path):
    """Rank 0 text-only, rank 1 with an image, every step: the run finishes (no collective mismatch), each rank
    ran the vision tower on every step, and the loss is the 1-process loss on the same global batch."""
    if launch == "zero3":
        pytest.importorskip("deepspeed", reason="pip install --no-build-isolation 'virgo[deepspeed]' for ZeRO-3")
    family, model = family_model
    out = tmp_path / "run"
    proc = _probe_run(out, f"model_name_or_path={model}", f"train_files={mixed_file}", f"launch={launch}",
                      "per_device_train_batch_size=1", *COMMON)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
    seen = {r: json.loads((out / "probe" / f"rank{r}-batches.json").read_text()) for r in (0, 1)}
    # Rank 0's micro-batches hold no image and got the dummy; rank 1's hold a real image and did not.
    assert len(seen[0]) >= STEPS and all(b["images"] == 0 and b["dummy"] for b in seen[0])
    assert len(seen[1]) >= STEPS and all(b["images"] == 1 and not b["dummy"] for b in seen[1])
    info = json.loads((out / "run_info.json").read_text())
    assert info["world_size"] == 2 and info["vision_every_step"] is True
    got = _losses(out)
    assert sorted(got) == list(range(1, STEPS + 1)) and all(math.isfinite(v) for v in got.values())
    print(f"\n{family} {launch}: " + ", ".join(f"step {s}: 2 ranks {got[s]:.6f} vs 1 process {reference[s]:.6f} "
                                              f"(diff {got[s] - reference[s]:+.1e})" for s in sorted(got)))
    for step, loss in got.items():
        assert loss == pytest.approx(reference[step], rel=REL_TOL), (step, loss, reference[step])
    if launch == "fsdp2":
        _assert_sharded(out, model)
    # saved in the layout of the checkpoint it started from (the one vLLM reads), also under ZeRO-3, whose loading
    # path in transformers keeps a renaming that would write model.model.layers.* (virgo.modeling.load)
    assert saved_keys(out) == saved_keys(model)


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.parametrize("launch", ["zero3", "fsdp2"])
def test_linear_cross_entropy_with_a_sharded_head(qwen2vl_reference, mixed_file, launch, tmp_path):
    """The LM head and loss as one chunked op while the head's weight is sharded (ZeRO-3 gathers it for the
    head's forward, FSDP2 for the root's): the run finishes and its loss is the 1-process loss of the plain head."""
    if launch == "zero3":
        pytest.importorskip("deepspeed", reason="pip install --no-build-isolation 'virgo[deepspeed]' for ZeRO-3")
    model, reference = qwen2vl_reference
    out = tmp_path / "run"
    proc = _probe_run(out, f"model_name_or_path={model}", f"train_files={mixed_file}", f"launch={launch}",
                      "per_device_train_batch_size=1", "linear_cross_entropy=true", *COMMON)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
    assert json.loads((out / "run_info.json").read_text())["linear_cross_entropy"] is True
    got = _losses(out)
    assert sorted(got) == list(range(1, STEPS + 1))
    for step, loss in got.items():
        assert loss == pytest.approx(reference[step], rel=REL_TOL), (step, loss, reference[step])


def _assert_sharded(out: Path, base_model: Path) -> None:
    """Every parameter of every rank is a DTensor sharded on dim 0, each rank holding its half; the saved model is
    a plain HF model dir with the base model's keys."""
    from safetensors.torch import load_file

    ranks = [json.loads((out / "probe" / f"rank{r}-params.json").read_text()) for r in (0, 1)]
    for params in ranks:
        assert params and all(p["dtensor"] and p["placements"] == ["Shard(dim=0)"] for p in params.values())
    q = "model.language_model.layers.0.self_attn.q_proj.weight"
    rows = ranks[0][q]["global"][0]
    assert [r[q]["local"][0] for r in ranks] == [rows // 2, rows - rows // 2]
    assert any(n.startswith("model.visual.blocks.") for n in ranks[0])  # the vision tower is sharded too
    saved, base = load_file(str(out / "model.safetensors")), load_file(str(base_model / "model.safetensors"))
    assert set(saved) == set(base) and all(saved[k].shape == base[k].shape for k in base)
    assert not (out / "adapter").exists()


@pytest.mark.slow
@pytest.mark.distributed
def test_fsdp2_run_resumes_from_its_checkpoint(mixed_file, tmp_path, monkeypatch):
    """A checkpoint of a sharded run holds the gathered model and the full optimizer state: an FSDP2 run stopped
    after step 2 and started again continues with exactly the losses of the uninterrupted run."""
    import dataclasses

    from virgo.train.config import load_config
    from virgo.train.sft import train

    out = tmp_path / "run"
    first = [f"train_files={mixed_file}", "model_name_or_path=tiny:xs", "launch=fsdp2",
             "per_device_train_batch_size=1", *COMMON, "save_strategy=steps", "save_steps=2"]
    monkeypatch.setenv("VIRGO_CACHE", str(tmp_path / "cache"))  # tiny:xs, built once for both runs and the reference
    env = _env()
    cut = run_group([sys.executable, "-m", "virgo", "train", "-n", "2", "-o", str(out), *first, "max_steps=2"],
                    cwd=REPO, env=env, timeout=600)
    assert cut.returncode == 0, cut.stdout[-3000:] + cut.stderr[-3000:]
    assert {p.name for p in (out / "checkpoint-2").iterdir()} >= {"model.safetensors", "optimizer.pt", "scheduler.pt"}
    again = run_group([sys.executable, "-m", "virgo", "train", "-n", "2", "-o", str(out), *first], cwd=REPO,
                      env=env, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"resuming from {out / 'checkpoint-2'} (step 2)" in again.stdout
    # the uninterrupted reference: one process, the same global batches (as in the mixed-modality test)
    ref_cfg = load_config(out / "train_config.yaml")
    ref = train(dataclasses.replace(ref_cfg, output_dir=str(tmp_path / "ref"), launch="ddp", save_strategy="no",
                                    per_device_train_batch_size=2, resume_from_checkpoint="none"))
    want, got = _losses(ref), _losses(out)
    assert sorted(got) == list(range(1, STEPS + 1))
    for step in got:
        assert got[step] == pytest.approx(want[step], rel=REL_TOL), step


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.distributed
def test_two_nodes_on_localhost_through_virgo_train(mixed_file, tmp_path):
    """2 "nodes" x 1 process: the command users run on each machine (machine ranks 0 and 1, one master address),
    here with FSDP2. Both finish, the run has 2 ranks, and the model is saved once, by the main node."""
    from transformers import AutoModelForImageTextToText

    cache = tmp_path / "cache"
    out = tmp_path / "OUT"
    port = _free_port()
    cmd = [sys.executable, "-m", "virgo", "train", "--num-processes", "2", "--num-machines", "2",
           "--main-process-ip", "127.0.0.1", "--main-process-port", str(port), "--launch", "fsdp2",
           "--output-dir", str(out), "model_name_or_path=tiny:xs", f"train_files={mixed_file}",
           "per_device_train_batch_size=1", *COMMON]
    env = {**_env(), "VIRGO_CACHE": str(cache)}
    nodes = [subprocess.Popen([*cmd, "--machine-rank", str(rank)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True) for rank in (0, 1)]
    try:
        logs = [node.communicate(timeout=600)[0] for node in nodes]
    finally:
        for node in nodes:  # each node's launcher with its ranks, whether it ended or hung
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)
    for rank, (node, log) in enumerate(zip(nodes, logs)):
        assert node.returncode == 0, f"node {rank}:\n{log[-4000:]}"
        assert "--nnodes=2" in log and f"--node_rank={rank}" in log and f"--master_port={port}" in log
    assert sum(log.count("model saved to") for log in logs) == 1 and "model saved to" in logs[0]
    info = json.loads((out / "run_info.json").read_text())
    assert info["world_size"] == 2 and info["fsdp2_sharded_by_virgo"] is True
    assert sorted(_losses(out)) == list(range(1, STEPS + 1))
    assert AutoModelForImageTextToText.from_pretrained(out).config.model_type == "qwen2_vl"


# ----------------------------------------------------------------------------- the probe (torchrun runs this file)

def _probe_main(argv: list[str]) -> None:
    """``probe OUT KEY=VALUE ...``: `virgo.train.sft.train` with a callback recording, per rank, each parameter's
    sharding at the start of training and what the collator put in each micro-batch."""
    from torch.distributed.tensor import DTensor
    from transformers import TrainerCallback

    from virgo.train import collate
    from virgo.train.config import load_config
    from virgo.train.launch import close_process_group
    from virgo.train.sft import train

    out, overrides = Path(argv[0]) / "probe", argv[1:]
    out.mkdir(parents=True, exist_ok=True)
    rank = int(os.environ.get("RANK", "0"))
    seen: list[dict] = []
    collate_batch = collate.SFTCollator.__call__

    def recording(self, features):
        images = sum(f.get("pixel_values") is not None for f in features)
        batch = collate_batch(self, features)
        seen.append({"images": images, "dummy": images == 0 and batch.get("pixel_values") is not None})
        return batch

    collate.SFTCollator.__call__ = recording

    class Probe(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            params = {}
            for name, p in model.named_parameters():
                dt = isinstance(p, DTensor)
                params[name] = {"dtensor": dt, "placements": [repr(x) for x in p.placements] if dt else [],
                                "global": list(p.shape), "local": list((p.to_local() if dt else p).shape)}
            (out / f"rank{rank}-params.json").write_text(json.dumps(params))

        def on_train_end(self, args, state, control, **kwargs):
            (out / f"rank{rank}-batches.json").write_text(json.dumps(seen))

    train(load_config(None, overrides), callbacks=[Probe()])
    close_process_group()  # as `virgo train`'s ranks end (`rank_main`): a live gloo group can abort the exit


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "probe":
    _probe_main(sys.argv[2:])


@pytest.mark.distributed
def test_a_rank_destroys_its_process_group_before_exiting():
    """`rank_main` ends with `close_process_group`: a gloo group left alive at interpreter exit can abort the rank
    after a finished run (SIGABRT, "terminate called without an active exception"; seen once in CI)."""
    code = ("import torch.distributed as dist\n"
            "from virgo.train.launch import close_process_group\n"
            "dist.init_process_group('gloo', rank=0, world_size=1)\n"
            "assert dist.is_initialized()\n"
            "close_process_group()\n"
            "close_process_group()  # a second call (no group) is a no-op\n"
            "print('initialized after:', dist.is_initialized())\n")
    env = {**_env(), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    done = run_group([sys.executable, "-c", code], cwd=REPO, env=env, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "initialized after: False" in done.stdout
