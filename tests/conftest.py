"""Shared fixtures: a tiny Qwen2-VL model built once per session, and the shared real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VIRGO_SHARED_DATA", REPO.parent / "shared" / "data"))


def _limit_threads() -> None:
    # Tests run beside other work on 2 cores; one intra-op thread avoids OpenMP threads starving each other.
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "MANIFEST.md").exists():
        pytest.skip(f"shared real data not found at {SHARED_DATA} (set VIRGO_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen2-VL checkpoint directory (safetensors + processor), built once."""
    from virgo.modeling.tiny import make_tiny_model

    _limit_threads()
    return make_tiny_model(tmp_path_factory.mktemp("tiny-model") / "model", size="xs", seed=0)


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from virgo.modeling.load import load_model_and_processor

    model, processor = load_model_and_processor(tiny_model_dir)
    model.eval()
    return model, processor
