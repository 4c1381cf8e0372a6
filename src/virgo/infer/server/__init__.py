"""An OpenAI-compatible server for a local model: ``/v1/models``, ``/v1/chat/completions`` and ``/health``.

    virgo serve --model runs/virgo-tiny --port 8000
    curl -s localhost:8000/v1/chat/completions -H 'content-type: application/json' \\
         -d '{"model": "virgo-tiny", "messages": [{"role": "user", "content": "What is 3 + 4?"}]}'

The thought comes back apart from the answer, as reasoning servers return it: ``message.reasoning_content``
(streamed as ``delta.reasoning_content``) and ``message.content``. Each choice also carries the raw output under
``virgo`` (text with markers, thought tokens, budget events), which `virgo.infer.backends.openai_backend` reads.

- `models`: the request and response bodies (pydantic, OpenAI's field names), validated by FastAPI: strict,
  finite, bounded numbers; extensions ``repetition_penalty``, ``top_k``, ``min_p``, ``thinking_budget``,
  ``force_wait``.
- `convert`: a request over the server's decoding defaults (``ServeConfig.generate``), images checked from their
  headers (data URLs; paths only under ``image_root``; no remote URLs), outputs to responses.
- `worker`: the bounded queue (429 with Retry-After beyond ``max_queue``) and the decoding thread; a request
  whose client left or whose ``request_timeout`` passed leaves the decoder at its next step.
- `errors`: every error in OpenAI's shape; the guard (API key, then the body limit: 413).
- `app`: the routes and the stream; `serve(cfg)` runs it with uvicorn.

The ``model`` field must be one of the served names (``--served-model-name``, repeatable; default the model
directory's name), else 404 ``model_not_found``. ``GET /health`` says ``ready`` (a request now is admitted) or
``busy`` (the queue is full), with the queue depth, the rows being decoded and counters.
"""

from virgo.infer.server.app import create_app, serve
from virgo.infer.server.config import ServeConfig, check_bind, is_loopback
from virgo.infer.server.convert import to_params
from virgo.infer.server.models import ChatCompletionRequest

__all__ = ["ChatCompletionRequest", "ServeConfig", "check_bind", "create_app", "is_loopback", "serve", "to_params"]
