"""Shared fixtures: a tiny Qwen2-VL model built once per session, and the shared real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _find_shared_data() -> Path:
    # The real benchmark items live beside the checkout (../shared/data); a clean clone made elsewhere (as CI
    # does) still finds them in the workspace. VIRGO_SHARED_DATA overrides both.
    if os.environ.get("VIRGO_SHARED_DATA"):
        return Path(os.environ["VIRGO_SHARED_DATA"])
    candidates = [REPO.parent / "shared" / "data", Path("/work/shared/data")]
    return next((c for c in candidates if (c / "MANIFEST.md").exists()), candidates[0])


SHARED_DATA = _find_shared_data()


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
