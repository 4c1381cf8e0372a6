"""An OpenAI-compatible server for a local model: ``/v1/models`` and ``/v1/chat/completions``.

    virgo serve --model runs/virgo-tiny --port 8000
    curl -s localhost:8000/v1/chat/completions -H 'content-type: application/json' \\
         -d '{"model": "virgo-tiny", "messages": [{"role": "user", "content": "What is 3 + 4?"}]}'

The thought comes back apart from the answer, as reasoning servers return it: ``message.reasoning_content``
(streamed as ``delta.reasoning_content``) and ``message.content``. Each choice also carries the raw output under
``virgo`` (text with markers, thought tokens, budget events), which `virgo.infer.backends.openai_backend` uses.

The request's ``model`` field is not checked (one server, one model; clients often send a placeholder).
Requests are queued to one worker thread that batches whatever is waiting (up to ``batch_size``) through the
transformers backend; nothing is dropped, a request waits its turn. Extra request fields: ``repetition_penalty``,
``thinking_budget``, ``force_wait`` (see `virgo.infer.budget`); a request without one gets the server's default
(``cfg``: `virgo serve --thinking-budget/--force-wait`), and every prompt is rendered with ``cfg.chat_template``.
Images are ``image_url`` parts with data URLs;
a local path (or ``file://`` URL) is read only from under ``image_root``. Bodies over ``max_body_bytes`` get
413, images over ``max_image_pixels`` (decompression bombs included) 400, a missing or wrong key 401.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hmac
import ipaddress
import json
import queue
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from virgo.infer.backends.base import GenerationFailures
from virgo.infer.config import GenerateConfig
from virgo.infer.images import DEFAULT_MAX_PIXELS, ImageError, open_image
from virgo.infer.requests import GenOutput, GenRequest
from virgo.infer.split import ANSWER, StreamSplitter, split_reasoning

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


class RequestError(ValueError):
    """A bad request: answered with ``status`` and an OpenAI-style error body."""

    def __init__(self, message: str, status: int = 400, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.param = param


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# -- request parsing -------------------------------------------------------------------------------------------

@dataclass
class ChatParams:
    messages: list[dict[str, Any]]
    images: list[Any]
    cfg: GenerateConfig
    n: int = 1
    stream: bool = False
    include_usage: bool = False
    seed: int | None = None


def _number(body: dict, name: str, kind: type, default: Any) -> Any:
    v = body.get(name)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not float(v).is_integer()):
        raise RequestError(f"'{name}' must be {'an integer' if kind is int else 'a number'}", param=name)
    return kind(v)


def _resolve_local(path: str, image_root: Path | None) -> Path:
    if image_root is None:
        raise RequestError("local image paths are not allowed on this server (start it with --image-root); "
                           "send the image as a data URL", param="messages")
    p = Path(path)
    p = (p if p.is_absolute() else image_root / p).resolve()
    if not p.is_relative_to(image_root):
        raise RequestError(f"image path {path!r} is outside the allowed image directory", status=403,
                           param="messages")
    return p


def load_image_part(part: dict, image_root: Path | None, max_pixels: int):
    """The PIL image of an ``image_url`` part: a data URL, or a path under ``image_root``."""
    spec = part.get("image_url")
    url = spec.get("url") if isinstance(spec, dict) else spec
    if not isinstance(url, str) or not url:
        raise RequestError("an image_url part needs image_url.url", param="messages")
    if url.startswith(("http://", "https://")):
        raise RequestError("remote image URLs are not fetched; send the image as a data URL", param="messages")
    src: Any = url
    if not url.startswith("data:"):
        src = _resolve_local(url.removeprefix("file://"), image_root)
    try:
        return open_image(src, max_pixels=max_pixels)
    except ImageError as e:
        raise RequestError(f"image: {e}", param="messages") from None


def convert_messages(raw: Any, image_root: Path | None, max_pixels: int) -> tuple[list[dict], list[Any]]:
    """OpenAI chat messages -> `virgo.prompts` messages with ``{"type": "image"}`` placeholders, and the images."""
    if not isinstance(raw, list) or not raw:
        raise RequestError("'messages' must be a non-empty list", param="messages")
    messages, images = [], []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "developer"):
            raise RequestError(f"messages[{i}] needs a role of system, user or assistant", param="messages")
        role = "system" if m["role"] == "developer" else m["role"]
        content = m.get("content")
        if content is None:
            content = ""
        if isinstance(content, str):
            messages.append({"role": role, "content": content})
            continue
        if not isinstance(content, list):
            raise RequestError(f"messages[{i}].content must be a string or a list of parts", param="messages")
        parts = []
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                parts.append({"type": "text", "text": str(part.get("text", ""))})
            elif kind == "image_url":
                if role != "user":
                    raise RequestError(f"messages[{i}]: images are only allowed in user messages", param="messages")
                images.append(load_image_part(part, image_root, max_pixels))
                parts.append({"type": "image"})
            else:
                raise RequestError(f"messages[{i}]: unsupported content part type {kind!r}", param="messages")
        if role == "user":
            messages.append({"role": role, "content": parts})
        else:  # the chat template renders only user turns as parts
            messages.append({"role": role, "content": "".join(p.get("text", "") for p in parts)})
    return messages, images


def parse_chat_request(body: Any, base: GenerateConfig, image_root: Path | None, max_pixels: int) -> ChatParams:
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    messages, images = convert_messages(body.get("messages"), image_root, max_pixels)
    max_tokens = _number(body, "max_completion_tokens", int, None) or _number(body, "max_tokens", int, None)
    budget = _number(body, "thinking_budget", int, base.thinking_budget)
    if body.get("stop"):
        raise RequestError("'stop' sequences are not supported by this server", param="stop")
    try:
        cfg = base.replace(
            max_new_tokens=max_tokens or base.max_new_tokens,
            temperature=_number(body, "temperature", float, base.temperature),
            top_p=_number(body, "top_p", float, base.top_p),
            repetition_penalty=_number(body, "repetition_penalty", float, base.repetition_penalty),
            thinking_budget=budget, force_wait=_number(body, "force_wait", int, base.force_wait), n=1)
    except ValueError as e:
        raise RequestError(str(e)) from None
    n = _number(body, "n", int, 1)
    if not 1 <= n <= 16:
        raise RequestError("'n' must be between 1 and 16", param="n")
    opts = body.get("stream_options") or {}
    return ChatParams(messages, images, cfg, n=n, stream=bool(body.get("stream")),
                      include_usage=bool(isinstance(opts, dict) and opts.get("include_usage")),
                      seed=_number(body, "seed", int, None))


# -- the worker ------------------------------------------------------------------------------------------------

@dataclass
class Job:
    request: GenRequest
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)
    cancelled: bool = False


class BatchWorker:
    """One thread that takes waiting jobs from a queue, up to ``batch_size`` at a time, and runs them together."""

    def __init__(self, backend, *, batch_size: int = 8, wait_seconds: float = 0.01):
        self.backend = backend
        self.batch_size = batch_size
        self.wait_seconds = wait_seconds
        self.queue: queue.Queue[Job | None] = queue.Queue()
        self.batches: list[int] = []  # size of every batch run (for tests and logs)
        self._thread = threading.Thread(target=self._loop, name="virgo-serve-worker", daemon=True)
        self._thread.start()

    def submit(self, request: GenRequest) -> Job:
        job = Job(request)
        self.queue.put(job)
        return job

    def stop(self) -> None:
        self.queue.put(None)
        self._thread.join(timeout=30)

    def _take(self) -> list[Job] | None:
        first = self.queue.get()
        if first is None:
            return None
        jobs = [first]
        deadline = time.monotonic() + self.wait_seconds
        while len(jobs) < self.batch_size:
            try:
                job = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                self.queue.put(None)  # stop after this batch
                break
            jobs.append(job)
        return [j for j in jobs if not j.cancelled]

    def _loop(self) -> None:
        while (jobs := self._take()) is not None:
            if jobs:
                self._run(jobs)

    def _run(self, jobs: list[Job]) -> None:
        self.batches.append(len(jobs))
        cfg = GenerateConfig(batch_size=len(jobs))
        try:
            for i, out in self.backend.iter_generate([j.request for j in jobs], cfg):
                jobs[i].future.set_result(out)
        except GenerationFailures as e:  # the backend isolated the bad requests; the others are answered
            for i, err in e.failures.items():
                jobs[i].future.set_exception(err)
        except Exception as e:  # one bad request must not fail the others
            left = [j for j in jobs if not j.future.done()]
            if len(jobs) == 1 or len(left) == len(jobs) == 1:
                for j in left:
                    j.future.set_exception(e)
                return
            for j in left:  # retry alone, so only the culprit fails
                self._run([j])


# -- responses -------------------------------------------------------------------------------------------------

def _error(message: str, status: int, param: str | None = None) -> JSONResponse:
    kind = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
            413: "invalid_request_error"}.get(status, "invalid_request_error" if status < 500 else "server_error")
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": status}},
                        status_code=status)


def _usage(outs: list[GenOutput]) -> dict[str, Any]:
    prompt = outs[0].prompt_tokens or 0 if outs else 0
    completion = sum(o.completion_tokens or 0 for o in outs)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "completion_tokens_details": {"reasoning_tokens": sum(o.thought_tokens or 0 for o in outs
                                                                  if split_reasoning(o.text)[0] is not None)}}


def _virgo_info(o: GenOutput) -> dict[str, Any]:
    return {"text": o.text, "thought_tokens": o.thought_tokens, "budget_forced": o.budget_forced, "waits": o.waits,
            "seed": o.seed}


def _choice(i: int, o: GenOutput) -> dict[str, Any]:
    reasoning, content = split_reasoning(o.text)
    message = {"role": "assistant", "content": content, "reasoning_content": reasoning}
    return {"index": i, "message": message, "finish_reason": o.finish_reason, "logprobs": None,
            "virgo": _virgo_info(o)}


class BodyLimit:
    """ASGI middleware: 413 for bodies over the limit, by header or by counting what arrives (chunked bodies)."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        too_big = f"request body is larger than the server's limit of {self.max_bytes} bytes"
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await _error(too_big, 413)(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise RequestError(too_big, 413)
            return message

        await self.app(scope, limited, send)


def create_app(model_path: Any, *, api_key: str | None = None, image_root: str | Path | None = None,
               model_name: str | None = None, backend: Any = None, cfg: GenerateConfig | None = None,
               batch_size: int = 8, batch_wait: float = 0.01, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               max_image_pixels: int = DEFAULT_MAX_PIXELS, dtype: str = "float32"):
    """The FastAPI app serving ``model_path`` (a checkpoint path or a loaded ``(model, processor)`` pair).

    ``cfg`` holds the defaults for what a request leaves out (greedy, repetition penalty 1.05, 8,192 tokens).
    """
    if backend is None:
        from virgo.infer.backends.transformers_backend import TransformersBackend

        backend = TransformersBackend(model_path, dtype=dtype, max_pixels=max_image_pixels)
    name = model_name or (Path(model_path).name if isinstance(model_path, (str, Path)) else backend.model_name)
    base = cfg or GenerateConfig()
    root = Path(image_root).resolve() if image_root is not None else None
    worker = BatchWorker(backend, batch_size=batch_size, wait_seconds=batch_wait)
    created = int(time.time())

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        worker.stop()

    app = FastAPI(title="virgo serve", version="1", lifespan=lifespan)
    app.state.worker = worker
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, e: RequestError):
        return _error(str(e), e.status, e.param)

    @app.middleware("http")
    async def _auth(request: Request, call_next):
        if api_key and request.url.path.startswith("/v1/"):
            header = request.headers.get("authorization", "")
            given = header[7:] if header.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(given.encode(), api_key.encode()):
                return _error("invalid or missing API key (send 'Authorization: Bearer <key>')", 401)
        return await call_next(request)

    @app.get("/health")
    async def health():
        return {"status": "ok", "queued": worker.queue.qsize()}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": name, "object": "model", "created": created, "owned_by": "virgo"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RequestError("the request body is not valid JSON") from None
        params = await run_in_threadpool(parse_chat_request, body, base, root, max_image_pixels)
        seed = params.seed if params.seed is not None else secrets.randbits(63)
        rid = f"chatcmpl-{uuid.uuid4().hex}"
        if params.stream:
            return StreamingResponse(_stream(request, params, seed, rid), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        jobs = [worker.submit(GenRequest(params.messages, params.images, id=rid, sample=i, seed=seed + i,
                                         cfg=params.cfg)) for i in range(params.n)]
        try:
            outs = [await asyncio.wrap_future(j.future) for j in jobs]
        except (ValueError, ImageError) as e:
            raise RequestError(str(e)) from None
        return JSONResponse({"id": rid, "object": "chat.completion", "created": int(time.time()), "model": name,
                             "choices": [_choice(i, o) for i, o in enumerate(outs)], "usage": _usage(outs)})

    async def _stream(request: Request, params: ChatParams, seed: int, rid: str):
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        gone = threading.Event()  # the client went away: its rows stop at their next token
        jobs = []
        for i in range(params.n):
            def on_text(text: str, i: int = i) -> bool:
                loop.call_soon_threadsafe(events.put_nowait, (i, text))
                return not gone.is_set()
            jobs.append(worker.submit(GenRequest(params.messages, params.images, id=rid, sample=i, seed=seed + i,
                                                 cfg=params.cfg, on_text=on_text)))
        for i, j in enumerate(jobs):
            j.future.add_done_callback(lambda f, i=i: loop.call_soon_threadsafe(events.put_nowait, (i, f)))

        def chunk(choices: list[dict], usage: dict | None = None) -> str:
            data = {"id": rid, "object": "chat.completion.chunk", "created": int(time.time()), "model": name,
                    "choices": choices}
            if usage is not None:
                data["usage"] = usage
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        def deltas(i: int, pieces: list[tuple[str, str]]) -> list[str]:
            key = {ANSWER: "content"}
            return [chunk([{"index": i, "delta": {key.get(k, "reasoning_content"): t}, "finish_reason": None}])
                    for k, t in pieces]

        splitters = [StreamSplitter() for _ in jobs]
        outs: list[GenOutput | None] = [None] * len(jobs)
        try:
            for i in range(len(jobs)):
                yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
            while any(o is None for o in outs):
                i, item = await events.get()
                if isinstance(item, str):
                    for c in deltas(i, splitters[i].feed(item)):
                        yield c
                    continue
                try:
                    outs[i] = item.result()
                except Exception as e:  # the headers are sent: report the error in the stream
                    yield f"data: {json.dumps({'error': {'message': str(e), 'type': 'server_error'}})}\n\n"
                    return
                for c in deltas(i, splitters[i].finish()):
                    yield c
                yield chunk([{"index": i, "delta": {}, "finish_reason": outs[i].finish_reason,
                              "virgo": _virgo_info(outs[i])}])
            if params.include_usage:
                yield chunk([], usage=_usage(outs))  # type: ignore[arg-type]
            yield "data: [DONE]\n\n"
        finally:
            gone.set()
            for j in jobs:  # still queued: never started
                j.cancelled = True

    return app


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to expose a model beyond this machine without a key."""
    if not is_loopback(host) and not api_key:
        raise ValueError(f"binding to {host} exposes the model beyond this machine: set --api-key "
                         "(or VIRGO_API_KEY)")


def serve(model: str, *, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          log_level: str = "info", **app_kw: Any) -> None:
    """Run the server with uvicorn. Refuses a non-loopback address without an API key."""
    import uvicorn

    check_bind(host, api_key)
    app = create_app(model, api_key=api_key, **app_kw)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
