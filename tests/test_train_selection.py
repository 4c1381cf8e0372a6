"""Dev split and checkpoint selection as the paper did it, logging through report_to, and the decontamination
pre-flight: real single-process runs of the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from virgo.records import LongThoughtExample, Problem, write_records
from virgo.train.callbacks import read_log
from virgo.train.config import load_config
from virgo.train.data import dev_count, split_dev
from virgo.train.sft import train


def _cfg(model, out, *extra):
    return load_config(None, [f"model_name_or_path={model}", f"output_dir={out}", "image_max_pixels=3136",
                              "max_length=1024", "warmup_steps=0", "logging_steps=1", "torch_threads=1",
                              "progress=false", "seed=0", *extra])


def test_val_size_is_a_fraction_or_a_count_held_out_with_a_seed():
    from virgo.train.data import Encoded

    assert [dev_count(v, 5000) for v in (0.001, 0.1, 3, 0)] == [5, 500, 3, 0]
    assert dev_count(0.0001, 50) == 1  # a fraction never rounds the dev set away
    with pytest.raises(ValueError, match="nothing would be left to train on"):
        dev_count(10, 10)
    samples = [Encoded(f"s{i}", None, 0, [], []) for i in range(20)]
    train_a, dev_a = split_dev(samples, 0.2, seed=1)
    _, dev_b = split_dev(samples, 0.2, seed=1)
    _, dev_c = split_dev(samples, 0.2, seed=2)
    ids = [s.id for s in dev_a]
    assert len(ids) == 4 and ids == [s.id for s in dev_b] and ids != [s.id for s in dev_c]
    assert {s.id for s in train_a} | set(ids) == {s.id for s in samples} and not {s.id for s in train_a} & set(ids)
    assert ids == sorted(ids, key=lambda x: int(x[1:]))  # file order kept


@pytest.fixture(scope="module")
def two_plus_two(tmp_path_factory) -> tuple[Path, Path]:
    """A training set the tiny model can learn within a few epochs, and benchmark items it then answers right."""
    d = tmp_path_factory.mktemp("2+2")
    write_records(d / "train.jsonl", [LongThoughtExample(id=f"t{i}", question="What is 2 + 2?", thought="2 + 2 = 4.",
                                                         solution="The answer is \\boxed{4}.", answer="4")
                                      for i in range(8)])
    write_records(d / "bench.jsonl", [Problem(id=f"p{i}", question="What is 2 + 2?", answer="4") for i in range(2)])
    return d / "train.jsonl", d / "bench.jsonl"


def test_generation_eval_at_each_epoch_selects_the_checkpoint_by_accuracy(tiny_model_dir, two_plus_two, tmp_path):
    """val_size holds out a dev set; each epoch logs the dev loss and the accuracy of generating on a benchmark
    slice (graded by virgo.grade); the best checkpoint by eval_accuracy is recorded; TensorBoard gets it all."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train_file, bench = two_plus_two
    out = train(_cfg(tiny_model_dir, tmp_path / "run", f"train_files={train_file}", "val_size=2",
                     "per_device_train_batch_size=2", "num_train_epochs=8", "learning_rate=5e-3",
                     "lr_scheduler_type=constant", "save_strategy=epoch", f"gen_eval_benchmark={bench}",
                     "gen_eval_max_new_tokens=40", "gen_eval_workers=0", "metric_for_best_model=eval_accuracy"))
    info = json.loads((out / "run_info.json").read_text())
    assert info["preflight"]["eval_samples"] == 2 and info["preflight"]["kept"] == 6
    index = read_log(out / "checkpoints.jsonl")
    assert [r["epoch"] for r in index] == [float(e) for e in range(1, 9)]  # eval_strategy followed save_strategy
    acc = [r["metrics"]["eval_accuracy"] for r in index]
    assert all("eval_loss" in r["metrics"] and r["metrics"]["eval_gen_items"] == 2 for r in index)
    assert acc[0] == 0.0 and acc[-1] == 1.0  # the random model cannot answer; the trained one does
    first_best = next(r for r in index if r["metrics"]["eval_accuracy"] == max(acc))
    best = info["best_checkpoint"]
    assert (best["metric"], best["greater_is_better"], best["value"]) == ("eval_accuracy", True, 1.0)
    assert best["checkpoint"] == first_best["checkpoint"] == index[-1]["best"] and (out / best["checkpoint"]).is_dir()
    for r in index:  # every evaluation is a `virgo eval` run folder: generations, grades, metrics
        run = out / "gen_eval" / f"step-{r['step']}"
        assert json.loads((run / "metrics.json").read_text())["accuracy"] == r["metrics"]["eval_accuracy"]
        assert len((run / "generations.jsonl").read_text().splitlines()) >= 2
    # report_to=tensorboard (the default) writes under OUTPUT_DIR/runs: training loss, dev loss, accuracy
    events = list((out / "runs").rglob("events.out.tfevents.*"))
    assert len(events) == 1
    tb = EventAccumulator(str(events[0].parent))
    tb.Reload()
    losses = [e.value for e in tb.Scalars("train/loss")]
    logged = {r["step"]: r["loss"] for r in read_log(out / "train_log.jsonl") if "loss" in r}
    assert losses == pytest.approx([logged[s] for s in sorted(logged)])
    assert len(tb.Scalars("eval/loss")) == 8 and [e.value for e in tb.Scalars("eval/accuracy")] == acc


def test_eval_files_every_n_steps_and_the_best_checkpoint_by_dev_loss(tiny_model_dir, tmp_path):
    from virgo.train.fixture import make_tiny_longthought

    train_file = make_tiny_longthought(tmp_path / "train", n=12, image_frac=0.5, seed=1)
    dev_file = make_tiny_longthought(tmp_path / "dev", n=4, image_frac=0.5, seed=2)
    out = train(_cfg(tiny_model_dir, tmp_path / "run", f"train_files={train_file}", f"eval_files={dev_file}",
                     "per_device_train_batch_size=4", "max_steps=6", "learning_rate=2e-3", "eval_strategy=steps",
                     "eval_steps=2", "save_strategy=steps", "save_steps=2", "metric_for_best_model=eval_loss",
                     "report_to=none"))
    index = read_log(out / "checkpoints.jsonl")
    assert [r["step"] for r in index] == [2, 4, 6]
    dev = {r["checkpoint"]: r["metrics"]["eval_loss"] for r in index}
    best = json.loads((out / "run_info.json").read_text())["best_checkpoint"]
    assert best["checkpoint"] == min(dev, key=dev.get) and best["value"] == pytest.approx(min(dev.values()))
    assert best["greater_is_better"] is False
    assert json.loads((out / "run_info.json").read_text())["preflight"]["eval_samples"] == 4
    assert not (out / "runs").exists()  # report_to=none


def test_the_preflight_warns_about_benchmark_items_in_the_training_data(tiny_model_dir, shared_data, tmp_path,
                                                                        capsys):
    """A training record that copies a MathVision question is named in the pre-flight (warnings only: it trains)."""
    from virgo.eval.registry import get_benchmark
    from virgo.train.fixture import make_tiny_longthought

    item = next(p for p in get_benchmark("mathvision").load(shared_data / "mathvision", "testmini")
                if len(p.question.split()) >= 25)
    train_file = make_tiny_longthought(tmp_path / "data", n=4, image_frac=0.0, seed=3)
    planted = LongThoughtExample(id="planted", question=f"Solve: {item.question.upper()}", thought="...",
                                 solution="The answer is \\boxed{1}.")
    write_records(tmp_path / "data" / "planted.jsonl", [planted])
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "mathvision").symlink_to(shared_data / "mathvision")
    cfg = _cfg(tiny_model_dir, tmp_path / "run", f"train_files=[{train_file},{tmp_path / 'data' / 'planted.jsonl'}]",
               f"decontaminate_against=[{tmp_path / 'bench'}]", "max_steps=1", "save_strategy=no", "report_to=none")
    with pytest.warns(UserWarning, match="planted.jsonl: 1 training record"):
        out = train(cfg)
    printed = capsys.readouterr().out
    assert "WARNING: " in printed and f"share a 13-gram with 1 mathvision item(s) (e.g. record planted and item " \
                                      f"{item.id}" in printed
    assert str(train_file) not in printed.split("WARNING")[1]  # the clean file is not named
    assert (out / "model.safetensors").exists()
