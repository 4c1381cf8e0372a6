"""``virgo serve``, generated from `ServeConfig`."""

from __future__ import annotations

from virgo.config.cli import command
from virgo.infer.server.config import ServeConfig


def run_serve_cmd(cfg: ServeConfig) -> None:
    from virgo.infer import server
    from virgo.modeling.source import check_model_exists

    check_model_exists(cfg.model)
    server.serve(cfg)  # looked up at call time, so a test can replace it


serve = command("serve", ServeConfig, run_serve_cmd, help="""OpenAI-compatible server: /v1/models,
/v1/chat/completions (the thought in reasoning_content) and /health.

Binds 127.0.0.1 unless given --api-key. Requests name the model by a served name (--served-model-name,
repeatable); a full queue answers 429 with Retry-After; a request whose client disconnects stops at the next
decoding step. Decoding defaults are the paper's (greedy, repetition penalty 1.05, 8,192 new tokens) for
whatever a request leaves out.""")
