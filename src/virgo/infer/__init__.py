"""Inference: long generation, thinking-budget control, chat and an OpenAI-compatible server.

    from virgo.infer import GenerateConfig, run_generate
    run_generate("path/to/model", problems, "gens.jsonl", GenerateConfig(max_new_tokens=2048, thinking_budget=1024))

Backends (`make_backend`): ``transformers`` (in-process, batched, budget control), ``openai`` (any
OpenAI-compatible server: ``vllm serve``, ``virgo serve``, a hosted API), ``vllm`` (optional, where it imports).
"""

from virgo.infer.backends.base import Backend
from virgo.infer.backends.registry import make_backend
from virgo.infer.config import GenerateConfig, sample_seed
from virgo.infer.requests import GenOutput, GenRequest
from virgo.infer.runner import run_generate, to_generation

__all__ = ["Backend", "GenOutput", "GenRequest", "GenerateConfig", "make_backend", "run_generate", "sample_seed",
           "to_generation"]
