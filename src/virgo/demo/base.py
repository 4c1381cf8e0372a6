"""The demo's base MLLM: shipped as a checkpoint (like a released pretrained model), checked by hash, rebuildable.

``virgo demo --rebuild-base`` remakes it from scratch with the same stages (`make-tiny-model` with the demo's
tokenizer corpus, then `virgo train` for alignment and the base instruction mix); ``ship`` copies a built base
into the package with a sha256 manifest.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from virgo.demo import recipe
from virgo.demo.data import Sizes, build_base_data, tokenizer_corpus

SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "demo-base"
MANIFEST = "SHA256SUMS"
_MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "processor_config.json",
                "tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(model_dir: Path = SHIPPED) -> Path:
    """Check every file against the manifest; raise with the file that differs."""
    manifest = model_dir / MANIFEST
    if not manifest.exists():
        raise FileNotFoundError(f"{manifest}: no base checkpoint manifest; run `virgo demo --rebuild-base`")
    for line in manifest.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        path = model_dir / name
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing from the base checkpoint (listed in {manifest})")
        if _sha256(path) != digest:
            raise ValueError(f"{path}: sha256 differs from {manifest}; the base checkpoint is corrupt or was "
                             f"changed (rebuild it with `virgo demo --rebuild-base`)")
    return model_dir


def make_initial_model(out: Path) -> Path:
    """The random tiny Qwen2-VL with a tokenizer trained on the demo's phrases and numbers as single tokens."""
    from virgo.modeling.load import load_model, load_processor
    from virgo.modeling.tiny import make_tiny_model

    make_tiny_model(out, size=recipe.SPEC, seed=recipe.MODEL_SEED, corpus=tokenizer_corpus(out))
    model, processor = load_model(out), load_processor(out)
    processor.tokenizer.add_tokens(recipe.NUMBER_TOKENS)
    model.resize_token_embeddings(len(processor.tokenizer), mean_resizing=False)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def run_stage(init: Path | str, train_files: list[Path], out: Path, stage: str, *, seed: int = 42,
              threads: int = 2, progress: bool = True, max_steps: int | None = None,
              recipes: Path | str | None = None, rl: bool = False) -> Path:
    """One `virgo train` stage (`virgo rl` with ``rl``): its recipe (``recipes/<stage>.yaml``, or from the folder
    ``recipes``) with the model, data and output filled in.

    The run's seed applies unless the recipe sets its own (the base's second alignment round does).
    """
    from virgo.train.launch import RL, SFT

    runner = RL if rl else SFT
    path = recipe.stage_recipe(stage, recipes)
    cli = {"model_name_or_path": str(init), "train_files": [str(p) for p in train_files], "output_dir": str(out),
           "torch_threads": threads, "progress": progress}
    if "seed" not in recipe.stage_settings(stage, recipes):
        cli["seed"] = seed
    if max_steps is not None:
        cli["max_steps"] = max_steps
    return runner.train()(runner.load(path, [], **cli))


def rebuild(work: Path, *, threads: int = 2, say: Callable[[str], None] = print) -> Path:
    """Build the base from scratch under ``work`` (about 30 min on 2 idle cores); returns the model dir."""
    work.mkdir(parents=True, exist_ok=True)
    say("base: building the training data")
    files = build_base_data(work / "data", Sizes())
    init = make_initial_model(work / "init")
    prev: Path = init
    for name, data in recipe.BASE_STAGES.items():
        say(f"base: stage {name} ({recipe.stage_settings(name)['max_steps']} steps)")
        prev = run_stage(prev, [files[d] for d in data], work / name, name, threads=threads)
    return prev


def ship(model_dir: Path, dest: Path = SHIPPED) -> Path:
    """Copy a built base into the package and write its sha256 manifest."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    names = [n for n in _MODEL_FILES if (model_dir / n).exists()] + ["train_config.yaml"]
    for name in names:
        shutil.copy2(model_dir / name, dest / name)
    (dest / "recipe.json").write_text(json.dumps({
        "spec": recipe.SPEC.__dict__, "model_seed": recipe.MODEL_SEED, "number_tokens": recipe.NUMBER_TOKENS,
        "stages": {name: {"data": data, **recipe.stage_settings(name)} for name, data in recipe.BASE_STAGES.items()},
        "data": Sizes().__dict__}, indent=2, default=str) + "\n")
    files = sorted(p.name for p in dest.iterdir() if p.name != MANIFEST)
    (dest / MANIFEST).write_text("".join(f"{_sha256(dest / n)}  {n}\n" for n in files))
    return dest
