"""The optional in-process vLLM backend: greedy text equals the transformers backend. Runs only where vLLM works."""

from __future__ import annotations

import pytest

from virgo.infer import GenerateConfig, GenRequest, make_backend
from virgo.prompts import build_messages


def test_vllm_greedy_matches_transformers(tiny_model_dir):
    pytest.importorskip("vllm")
    try:
        vb = make_backend("vllm", str(tiny_model_dir), gpu_memory_utilization=0.2)
    except ImportError as e:  # vLLM imports but has no usable platform here
        pytest.skip(str(e))
    reqs = [GenRequest(build_messages("What is 3 + 4?", 0), id="a")]
    cfg = GenerateConfig(max_new_tokens=16, repetition_penalty=1.0)
    want = make_backend("transformers", str(tiny_model_dir)).generate(reqs, cfg)[0]
    got = vb.generate(reqs, cfg)[0]
    assert got.text == want.text and got.finish_reason == want.finish_reason
