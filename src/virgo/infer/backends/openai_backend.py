"""Generation through any OpenAI-compatible endpoint (``vllm serve``, ``virgo serve``, a hosted API).

Requests run in a thread pool (``concurrency`` at a time per endpoint), each with a timeout and retries with
exponential backoff and jitter on what is worth retrying: connection errors, timeouts, 429, 5xx and malformed
responses. ``replicas`` are more endpoints of the same model beside ``base_url`` (`virgo.infer.backends.endpoints`:
the least busy one that is up takes each attempt).
A request that still fails does not stop the others: the run goes on and `GenerationFailures` lists it at
the end, so a rerun (which resumes) tries again. A wrong key or an unknown model stops at once.

One request per (problem, sample), with its own ``seed`` folded into 31 bits; the record carries the seed as sent,
so a served sample replays from its record. The server renders the prompt with its own chat template
(``virgo serve --chat-template``); ``cfg.chat_template`` is not sent. Every decoding setting a record carries is
sent, "off" included (`request_fields`), because a server fills what a request leaves out with its own defaults:
vLLM with the model's ``generation_config.json`` (Qwen2-VL-Instruct's: top-k 1, repetition penalty 1.05), `virgo
serve` with its command line. Beyond the OpenAI API that is ``repetition_penalty``, ``top_k`` (-1 = off, as vLLM
and SGLang take it), ``min_p``, ``thinking_budget`` / ``force_wait`` (`virgo serve`; vLLM ignores them) and
``skip_special_tokens: false`` (vLLM: keep the thought markers when they are special tokens). Pass
``sampling_extras=False`` (``--no-sampling-extras``) for an API that rejects unknown fields: then only OpenAI's
own fields go, and a setting beyond them that is not off stops the run. The raw text is rebuilt from
``reasoning_content`` + ``content`` when the server splits them (`virgo.infer.split.join_reasoning`), or taken as
is from `virgo serve`'s ``virgo.text``.
"""

from __future__ import annotations

import base64
import concurrent.futures
import io
import mimetypes
import os
import random
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from virgo.infer.backends.base import Backend, GenerationFailures
from virgo.infer.backends.endpoints import Endpoint, EndpointPool
from virgo.infer.config import GenerateConfig
from virgo.infer.requests import GenOutput, GenRequest
from virgo.infer.split import join_reasoning

# A long thought from a busy server takes minutes; the timeout bounds one attempt, retries come on top.
DEFAULT_TIMEOUT = 600.0
DEFAULT_MAX_RETRIES = 5
# OpenAI-compatible servers take a seed that fits a signed 32-bit integer.
SEED_RANGE = 2**31


def _interventions(info: dict, text: str) -> list[dict[str, Any]]:
    """`virgo serve`'s intervention points, kept only where they are well formed and inside the text (a server's
    reply is untrusted input)."""
    out = []
    for m in info.get("interventions") or []:
        if isinstance(m, dict) and m.get("kind") in ("wait", "budget") and isinstance(m.get("offset"), int) \
                and not isinstance(m.get("offset"), bool) and 0 <= m["offset"] <= len(text):
            out.append({"kind": m["kind"], "offset": m["offset"]})
    return out


def image_data_url(image: Any) -> str:
    """A ``data:`` URL for a path (bytes sent as they are) or a PIL image (sent as PNG)."""
    if isinstance(image, str) and image.startswith("data:"):
        return image
    if isinstance(image, (str, Path)):
        mime = mimetypes.guess_type(str(image))[0] or "image/png"
        data = Path(image).read_bytes()
    else:
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        mime, data = "image/png", buf.getvalue()
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


class UnsendableSettings(ValueError):
    """Settings the API cannot carry (sampling extras off): the run stops before its first request."""

    user_facing = True  # the CLI prints it as one line, no traceback (virgo.config.cli)


def request_fields(c: GenerateConfig, *, extras: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """The decoding fields of a request made with ``c``: (OpenAI's own fields, the rest for ``extra_body``).

    With ``extras`` every setting is sent, its "off" value included, so no server default can change what the
    record says made the text. Without, the request stays inside the OpenAI API (the penalties only when set: a
    hosted reasoning model refuses them), and a setting it cannot carry is an error, not a record that lies.
    """
    fields: dict[str, Any] = {"max_tokens": c.max_new_tokens, "temperature": c.temperature, "top_p": c.top_p}
    if c.stop or extras:
        fields["stop"] = list(c.stop)
    penalties = {"presence_penalty": c.presence_penalty, "frequency_penalty": c.frequency_penalty}
    own = {"repetition_penalty": c.repetition_penalty, "top_k": c.top_k or -1, "min_p": c.min_p,
           "thinking_budget": c.thinking_budget, "force_wait": c.force_wait}
    if extras:
        return {**fields, **penalties}, own
    off = {"repetition_penalty": 1.0, "top_k": -1, "min_p": 0.0, "thinking_budget": None, "force_wait": 0}
    if unsent := [f"{k} {v}" for k, v in own.items() if v != off[k]]:
        raise UnsendableSettings(f"{', '.join(unsent)}: not an OpenAI API field, and sampling extras are off "
                         "(--no-sampling-extras); set it to its off value or send extras")
    return {**fields, **{k: v for k, v in penalties.items() if v}}, {}


def to_openai_messages(messages: list[dict[str, Any]], images: Sequence[Any]) -> list[dict[str, Any]]:
    """`virgo.prompts` messages with ``{"type": "image"}`` placeholders -> OpenAI messages with data URLs."""
    it = iter(images)
    out = []
    for m in messages:
        content = m["content"]
        if isinstance(content, list):
            parts = []
            for p in content:
                if p.get("type") == "image":
                    try:
                        parts.append({"type": "image_url", "image_url": {"url": image_data_url(next(it))}})
                    except StopIteration:
                        raise ValueError("more image placeholders in the messages than images") from None
                else:
                    parts.append({"type": "text", "text": p.get("text", "")})
            content = parts
        out.append({"role": m["role"], "content": content})
    if next(it, None) is not None:
        raise ValueError("more images than image placeholders in the messages")
    return out


def _retryable(e: BaseException) -> bool:
    import openai

    if isinstance(e, (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
                      openai.InternalServerError, openai.APIResponseValidationError, ValueError)):
        return True  # ValueError: a body that is not the JSON it should be (a broken proxy or server)
    return isinstance(e, openai.APIStatusError) and e.status_code >= 500


def _fatal(e: BaseException) -> bool:
    import openai

    return isinstance(e, (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError))


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, model: str | None, *, base_url: str | None = None, api_key: str | None = None,
                 concurrency: int = 4, timeout: float = DEFAULT_TIMEOUT, max_retries: int = DEFAULT_MAX_RETRIES,
                 backoff: float = 1.0, max_backoff: float = 60.0, sampling_extras: bool = True,
                 extra_body: dict | None = None, replicas: Sequence[str] = ()):
        from openai import OpenAI

        key = api_key or os.environ.get("VIRGO_API_KEY") or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        # Retries are ours (they cover malformed bodies too and log nothing per attempt), not the client's.
        urls = list(dict.fromkeys([base_url, *replicas]))  # base_url None: the client's OPENAI_BASE_URL
        self.pool = EndpointPool([Endpoint(str(u), OpenAI(base_url=u, api_key=key, timeout=timeout, max_retries=0))
                                  for u in urls], backoff=backoff, max_backoff=max_backoff)
        self.client = self.pool.endpoints[0].client
        self.timeout = timeout
        self.model_name = model or self._served_model()
        if len(urls) > 1:
            self._check_replicas()
        self.concurrency = max(1, concurrency) * len(urls)  # in flight per endpoint
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sampling_extras = sampling_extras
        self.extra_body = dict(extra_body or {})
        self.attempts = 0  # requests sent, retries included
        self._lock = threading.Lock()

    def _served_model(self) -> str:
        models = self.client.models.list().data
        if not models:
            raise ValueError("the server lists no models; pass the model name")
        return models[0].id

    def _check_replicas(self) -> None:
        """Every endpoint that answers must serve the model: records of two models in one run would mix. One that
        does not answer yet is left to the retries (a replica still loading its weights)."""
        import openai

        for ep in self.pool.endpoints:
            try:
                served = [m.id for m in ep.client.with_options(timeout=min(self.timeout, 30.0)).models.list().data]
            except (openai.APIConnectionError, openai.APITimeoutError, openai.InternalServerError):
                warnings.warn(f"{ep.url}: no answer now; requests will try it again later", stacklevel=3)
                continue
            if self.model_name not in served:
                names = ", ".join(served) or "nothing"
                raise ValueError(f"{ep.url} does not serve {self.model_name!r} (it serves {names}); every replica "
                                 "must serve the same model")

    def stats(self) -> dict[str, Any]:
        return {"endpoints": self.pool.stats()} if len(self.pool.endpoints) > 1 else {}

    def _once(self, client: Any, req: GenRequest, cfg: GenerateConfig) -> GenOutput:
        fields, own = request_fields(req.settings(cfg), extras=self.sampling_extras)
        # the user's extra_body may change skip_special_tokens, never a setting the record carries
        extra = {"skip_special_tokens": False} if self.sampling_extras else {}
        seed = req.resolved_seed(cfg) % SEED_RANGE  # the seed sent is the seed recorded: a record replays
        with self._lock:
            self.attempts += 1
        resp = client.chat.completions.create(
            model=self.model_name, messages=to_openai_messages(req.messages, req.images),
            seed=seed, **fields, extra_body={**extra, **self.extra_body, **own} or None)
        if not getattr(resp, "choices", None):
            raise ValueError("the response has no choices")
        choice = resp.choices[0]
        finish = "length" if choice.finish_reason == "length" else "stop"
        info = (choice.model_extra or {}).get("virgo") or {}
        if isinstance(info.get("text"), str):
            text = info["text"]
        else:
            msg = choice.message
            extra = msg.model_extra or {}
            reasoning = extra.get("reasoning_content", extra.get("reasoning"))
            text = join_reasoning(reasoning, msg.content, finish)
        usage = resp.usage
        details = getattr(usage, "completion_tokens_details", None) if usage else None
        thought = info.get("thought_tokens", getattr(details, "reasoning_tokens", None))
        return GenOutput(text=text, finish_reason=finish,
                         prompt_tokens=usage.prompt_tokens if usage else None,
                         completion_tokens=usage.completion_tokens if usage else None,
                         thought_tokens=thought, seed=seed, budget_forced=bool(info.get("budget_forced", False)),
                         waits=int(info.get("waits") or 0), interventions=_interventions(info, text))

    def generate_one(self, req: GenRequest, cfg: GenerateConfig) -> GenOutput:
        """One request with retries: exponential backoff with full jitter, capped at ``max_backoff`` seconds."""
        import openai

        for attempt in range(self.max_retries + 1):
            url = "?"
            try:
                with self.pool.lease() as ep:
                    url = ep.url
                    out = self._once(ep.client, req, cfg)
                if len(self.pool.endpoints) > 1:  # which replica answered: the record says so
                    out.extra["endpoint"] = url
                return out
            except Exception as e:
                if _fatal(e) or not _retryable(e):
                    raise
                if attempt == self.max_retries:
                    if isinstance(e, openai.APITimeoutError):  # openai's own message is a bare "Request timed out."
                        raise TimeoutError(f"{url}: no response within {self.timeout:g} s "
                                           f"({attempt + 1} attempt(s)); a long generation may need a larger "
                                           f"--timeout") from e
                    raise
                if not self.pool.any_up():  # another endpoint up: it takes the retry at once
                    delay = min(self.max_backoff, self.backoff * 2 ** attempt)
                    time.sleep(random.uniform(delay / 2, delay))
        raise AssertionError("unreachable")

    def iter_generate(self, requests: Sequence[GenRequest], cfg: GenerateConfig) -> Iterator[tuple[int, GenOutput]]:
        for r in requests:  # a setting the API cannot take stops the run before any request
            request_fields(r.settings(cfg), extras=self.sampling_extras)
        failures: dict[int, BaseException] = {}
        with concurrent.futures.ThreadPoolExecutor(self.concurrency, thread_name_prefix="virgo-openai") as pool:
            futures = {pool.submit(self.generate_one, r, cfg): i for i, r in enumerate(requests)}
            try:
                for fut in concurrent.futures.as_completed(futures):
                    i = futures[fut]
                    try:
                        out = fut.result()
                    except Exception as e:
                        if _fatal(e):
                            raise
                        failures[i] = e
                        continue
                    yield i, out
            finally:
                for f in futures:
                    f.cancel()
        if failures:
            raise GenerationFailures(failures)

    def close(self) -> None:
        self.pool.close()
