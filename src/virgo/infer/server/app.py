"""The FastAPI app: routes, the wait for a request's completions (its client may leave, its time may run out),
the stream, and `serve`."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from virgo.infer.backends.base import ContextLengthError
from virgo.infer.requests import GenOutput, GenRequest
from virgo.infer.server.config import ServeConfig
from virgo.infer.server.convert import ChatParams, choice, to_params, usage, virgo_info
from virgo.infer.server.errors import NO_RETRY, APIError, Guard, install_error_handlers
from virgo.infer.server.models import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChunkChoice,
    Delta,
    ErrorResponse,
    Health,
    ModelCard,
    ModelList,
)
from virgo.infer.server.worker import BatchWorker, Job, QueueFull, Stopped
from virgo.infer.split import ANSWER, StreamSplitter
from virgo.modeling.images import ImageError

# Seconds a stopping server waits for its open connections after stopping the requests (a long thought takes
# minutes; uvicorn would otherwise wait for every one of them).
SHUTDOWN_GRACE = 5.0
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorResponse} for s in (400, 401, 404, 413, 429, 504)}


def _stop_error(reason: str, timeout: float | None) -> APIError:
    if reason == "timeout":
        return APIError(504, f"the request did not finish within the server's request timeout of {timeout:g} s",
                        code="timeout", headers=NO_RETRY)
    return APIError(503, f"the request was stopped ({reason})", code=reason)


def _failure(e: BaseException) -> APIError:
    """A job's error as the answer: the request's own fault (a bad image, a prompt too long) is a 400."""
    if isinstance(e, APIError):
        return e
    if isinstance(e, ContextLengthError):
        return APIError(400, str(e), param=e.param, code="context_length_exceeded")  # OpenAI's code
    if isinstance(e, (ValueError, ImageError)):
        return APIError(400, str(e))
    return APIError(500, f"generation failed ({type(e).__name__}); see the server log")


async def _disconnected(receive: Any) -> None:
    """Returns when the client closes the connection (the body has been read: only a disconnect can come)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class Server:
    """What the routes share: the config, the worker and the model's names."""

    def __init__(self, cfg: ServeConfig, backend: Any):
        self.cfg = cfg
        self.names = cfg.names
        self.root = Path(cfg.image_root).resolve() if cfg.image_root is not None else None
        self.worker = BatchWorker(backend, batch_size=cfg.generate.batch_size, wait_seconds=cfg.batch_wait,
                                  max_queue=cfg.max_queue)
        self.created = int(time.time())

    def deadline(self) -> float | None:
        return time.monotonic() + self.cfg.request_timeout if self.cfg.request_timeout is not None else None

    def check_model(self, name: str) -> None:
        if name not in self.names:
            raise APIError(404, f"The model `{name}` does not exist; this server serves "
                                f"{', '.join(map(repr, self.names))}", param="model", code="model_not_found",
                           kind="invalid_request_error")  # as OpenAI answers it

    def submit(self, p: ChatParams, rid: str, seed: int, deadline: float | None, on_text: Any = None) -> list[Job]:
        if p.n > self.worker.max_queue:
            raise APIError(400, f"n={p.n} is more than this server's queue holds ({self.worker.max_queue})",
                           param="n")
        reqs = [GenRequest(p.messages, p.images, id=rid, sample=i, seed=seed + i, cfg=p.cfg,
                           on_text=on_text(i) if on_text else None, max_tokens_given=p.max_tokens_given)
                for i in range(p.n)]
        try:
            return self.worker.submit(reqs, deadline)
        except QueueFull as e:
            raise APIError(429, str(e), code="queue_full", headers={"Retry-After": str(e.retry_after)}) from None
        except Stopped:
            raise APIError(503, "the server is shutting down", code="shutdown") from None

    async def collect(self, request: Request, jobs: list[Job], deadline: float | None) -> list[GenOutput]:
        """The jobs' outputs; stops them all when the client leaves, the deadline passes or one of them fails."""
        waits = [asyncio.wrap_future(j.future) for j in jobs]
        everything = asyncio.gather(*waits)
        gone = asyncio.ensure_future(_disconnected(request.receive))
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        reason = "abandoned"  # unless all finish: one failed (or this task was cancelled), the rest serve no one
        try:
            done, _ = await asyncio.wait({everything, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if everything in done:
                outs = everything.result()
                reason = ""
                return outs
            reason = "disconnected" if gone in done else "timeout"
            raise Stopped(reason)
        finally:
            gone.cancel()
            if reason:
                self.stop(jobs, reason)
                for w in waits:  # nobody will read them (their jobs answer Stopped)
                    w.cancel()

    def stop(self, jobs: list[Job], reason: str) -> None:
        for j in jobs:
            if j.state != "done":
                self.worker.cancel(j, reason)

    def health(self) -> Health:
        w = self.worker
        status = "down" if not w.alive else "busy" if w.queued >= w.max_queue else "ready"
        return Health(status=status, queued=w.queued, active=w.active, max_queue=w.max_queue,
                      batch_size=w.batch_size, stats=dict(w.stats))


def create_app(cfg: ServeConfig, *, backend: Any = None) -> FastAPI:
    """The app serving ``cfg.model``; ``backend``: an already-built backend to serve instead (tests, notebooks)."""
    from virgo.config.load import check

    check(cfg, where="serve")
    if backend is None:
        from virgo.infer.backends.transformers_backend import TransformersBackend

        backend = TransformersBackend(cfg.model, dtype=cfg.generate.dtype, max_pixels=cfg.max_image_pixels)
    srv = Server(cfg, backend)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        srv.worker.stop()

    app = FastAPI(title="virgo serve", version="1", lifespan=lifespan)
    app.state.server = srv
    app.state.worker = srv.worker
    app.add_middleware(Guard, api_key=cfg.api_key, max_body_bytes=cfg.max_body_bytes)
    install_error_handlers(app)

    @app.get("/health", response_model=Health)
    async def health() -> Any:
        h = srv.health()
        return Response(h.model_dump_json(), status_code=503 if h.status == "down" else 200,
                        media_type="application/json")

    @app.get("/v1/models", response_model=ModelList, responses=ERRORS)
    async def models() -> ModelList:
        return ModelList(data=[ModelCard(id=n, created=srv.created) for n in srv.names])

    @app.get("/v1/models/{name:path}", response_model=ModelCard, responses=ERRORS)
    async def model(name: str) -> ModelCard:
        srv.check_model(name)
        return ModelCard(id=name, created=srv.created)

    @app.post("/v1/chat/completions", response_model=ChatCompletion, responses=ERRORS)
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
        srv.check_model(body.model)
        deadline = srv.deadline()
        params = await run_in_threadpool(to_params, body, cfg.generate, srv.root, cfg.max_image_pixels)
        seed = params.seed if params.seed is not None else secrets.randbits(63)
        rid = f"chatcmpl-{uuid.uuid4().hex}"
        if params.stream:
            stream = Stream(srv, params, rid)
            stream.jobs = srv.submit(params, rid, seed, deadline, on_text=stream.on_text)
            # The background task runs however the response ends: a client gone before the stream started
            # leaves no job behind.
            return StreamingResponse(stream.events(deadline), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"},
                                     background=BackgroundTask(srv.stop, stream.jobs, "disconnected"))
        jobs = srv.submit(params, rid, seed, deadline)
        try:
            outs = await srv.collect(request, jobs, deadline)
        except Stopped as e:
            if e.reason == "disconnected":
                return Response(status_code=499)  # nobody is listening
            raise _stop_error(e.reason, cfg.request_timeout) from None
        except Exception as e:  # noqa: BLE001 -- whatever failed the job is this request's answer, not a 500 bug
            raise _failure(e) from None
        return ChatCompletion(id=rid, created=int(time.time()), model=srv.names[0],
                              choices=[choice(i, o) for i, o in enumerate(outs)], usage=usage(outs))

    return app


class Stream:
    """One streamed request: text pieces from the worker thread become chunks, thought and answer apart."""

    def __init__(self, srv: Server, params: ChatParams, rid: str):
        self.srv, self.params, self.rid = srv, params, rid
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.jobs: list[Job] = []

    def on_text(self, i: int) -> Any:
        def put(text: str) -> None:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (i, text))
        return put

    def chunk(self, choices: list[ChunkChoice], usage: Any = None) -> str:
        c = ChatCompletionChunk(id=self.rid, created=int(time.time()), model=self.srv.names[0], choices=choices,
                                usage=usage)
        return f"data: {c.model_dump_json()}\n\n"

    def deltas(self, i: int, pieces: list[tuple[str, str]]) -> list[str]:
        return [self.chunk([ChunkChoice(index=i, delta=Delta(content=t) if k == ANSWER else
                                        Delta(reasoning_content=t))]) for k, t in pieces]

    async def events(self, deadline: float | None) -> AsyncIterator[str]:
        for i, j in enumerate(self.jobs):
            j.future.add_done_callback(lambda f, i=i: self.loop.call_soon_threadsafe(self.queue.put_nowait, (i, f)))
        splitters = [StreamSplitter() for _ in self.jobs]
        outs: list[GenOutput | None] = [None] * len(self.jobs)
        reason = "disconnected"  # unless it ends otherwise: the client went away (the task was cancelled)
        try:
            for i in range(len(self.jobs)):
                yield self.chunk([ChunkChoice(index=i, delta=Delta(role="assistant", content=""))])
            while any(o is None for o in outs):
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    i, item = await asyncio.wait_for(self.queue.get(), timeout)
                except asyncio.TimeoutError:
                    reason = "timeout"
                    yield self.error(_stop_error("timeout", self.srv.cfg.request_timeout))
                    return
                if isinstance(item, str):
                    for c in self.deltas(i, splitters[i].feed(item)):
                        yield c
                    continue
                try:
                    outs[i] = item.result()
                except Exception as e:  # noqa: BLE001 -- the headers are sent: the error goes in the stream
                    reason = "abandoned"
                    yield self.error(_stop_error(e.reason, self.srv.cfg.request_timeout) if isinstance(e, Stopped)
                                     else _failure(e))
                    return
                for c in self.deltas(i, splitters[i].finish()):
                    yield c
                yield self.chunk([ChunkChoice(index=i, delta=Delta(), finish_reason=outs[i].finish_reason,
                                              virgo=virgo_info(outs[i]))])
            if self.params.include_usage:
                yield self.chunk([], usage=usage(outs))  # type: ignore[arg-type]
            yield "data: [DONE]\n\n"
            reason = ""
        finally:
            if reason:
                self.srv.stop(self.jobs, reason)

    @staticmethod
    def error(e: APIError) -> str:
        body = ErrorResponse.model_validate({"error": {"message": e.message, "type": e.kind, "param": e.param,
                                                       "code": e.code}})
        return f"data: {body.model_dump_json()}\n\n"


def serve(cfg: ServeConfig, *, backend: Any = None) -> None:
    """Run the server with uvicorn (``backend`` as for `create_app`). Refuses a non-loopback address without an
    API key. On SIGINT / SIGTERM, requests still running after ``SHUTDOWN_GRACE`` seconds are stopped."""
    import uvicorn

    from virgo.config.load import check

    check(cfg, where="serve")
    app = create_app(cfg, backend=backend)

    class Uvicorn(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # Stop the running requests first (they are answered 503), so that uvicorn's wait for open
            # connections is short. From a thread: a signal handler must not take the worker's lock.
            threading.Thread(target=app.state.worker.halt, daemon=True).start()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level=cfg.log_level,
                            timeout_graceful_shutdown=SHUTDOWN_GRACE)
    Uvicorn(config).run()
