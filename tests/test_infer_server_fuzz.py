"""Property-based fuzzing (hypothesis) of `virgo serve`'s request handling (issue 18).

Two levels:
- the request models alone, thousands of arbitrary and near-valid bodies: validation either accepts a body or
  raises pydantic's ValidationError (which the server turns into one readable 400 line), and an accepted body
  always converts to decoding settings or to an `APIError`, never anything else;
- the real server (uvicorn on 127.0.0.1, the tiny model): near-valid bodies, mutated JSON text and raw bytes;
  every answer is a 200 or a 4xx, every 4xx carries OpenAI's error shape, and a 200 has what was asked for.

Valid bodies ask for at most 3 tokens (or the server's default, 2), so the accepted ones cost milliseconds.
Examples are derandomized (the same in every run, as CI needs) and no example database is written.
"""

from __future__ import annotations

import base64
import io
import json
import math

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydantic import ValidationError
from test_infer_server import running

from virgo.infer import GenerateConfig, make_backend
from virgo.infer.server import ChatCompletionRequest, ServeConfig, create_app, to_params
from virgo.infer.server.errors import APIError, _explain

pytestmark = pytest.mark.slow

FUZZ = settings(deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def png_data_url(size=(4, 4)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


GOOD_IMAGE = png_data_url()
HUGE_IMAGE = png_data_url((400, 400))  # over the servers' pixel limit below

# -- strategies -------------------------------------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
json_values = st.recursive(json_scalars, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                               st.dictionaries(st.text(max_size=5), kids,
                                                                               max_size=3)), max_leaves=10)
numbers = st.one_of(st.integers(min_value=-5, max_value=40), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.floats(min_value=0, max_value=3),
                    st.booleans(), st.none(), st.text(max_size=4))


def cheap(v) -> bool:
    """A token limit the server may accept only if it is small: a valid large one would cost real decoding."""
    return not (isinstance(v, int) and not isinstance(v, bool) and v > 3)


token_limits = st.one_of(st.integers(min_value=1, max_value=3), numbers.filter(cheap))
urls = st.one_of(st.just(GOOD_IMAGE), st.just(HUGE_IMAGE), st.text(max_size=20),
                 st.sampled_from(["http://example.com/a.png", "file:///etc/passwd", "red.png", "../x.png",
                                  "data:image/png;base64,!!", "data:,", "ftp://x/y", "/dev/zero"]))
parts = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=30)}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.one_of(
        st.fixed_dictionaries({"url": urls}, optional={"detail": st.sampled_from(["auto", "low", "x"])}), urls)}),
    st.fixed_dictionaries({"type": st.sampled_from(["audio", "input_text", ""])}),
    json_values)
wild_messages = st.lists(st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "developer", "tool", ""])},
    optional={"content": st.one_of(st.text(max_size=40), st.lists(parts, max_size=3), st.none(), json_scalars),
              "name": json_scalars}), min_size=0, max_size=3)
user = st.fixed_dictionaries({"role": st.just("user"), "content": st.one_of(
    st.text(min_size=1, max_size=40),
    st.lists(st.one_of(st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=30)}),
                       st.just({"type": "image_url", "image_url": {"url": GOOD_IMAGE}})), min_size=1, max_size=2))})
good_messages = st.tuples(st.lists(st.fixed_dictionaries({"role": st.sampled_from(["system", "developer"]),
                                                          "content": st.text(max_size=20)}), max_size=1),
                          user).map(lambda t: [*t[0], t[1]])
# A valid request (every field in range, at most 3 tokens) ...
valid = st.fixed_dictionaries(
    {"model": st.sampled_from(["tiny", "alias"]), "messages": good_messages},
    optional={"max_tokens": st.integers(1, 3), "max_completion_tokens": st.integers(1, 3),
              "temperature": st.floats(0, 2), "top_p": st.floats(0, 1, exclude_min=True), "n": st.integers(1, 3),
              "stream": st.booleans(), "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
              "seed": st.integers(-(2**63), 2**63 - 1), "repetition_penalty": st.floats(0.01, 100),
              "thinking_budget": st.integers(0, 10**9), "force_wait": st.integers(0, 3), "stop": st.just([]),
              "user": st.text(max_size=5)})
FIELDS = ["model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n", "stream",
          "stream_options", "stop", "seed", "repetition_penalty", "thinking_budget", "force_wait"]
bad_values = st.one_of(numbers.filter(cheap), json_values.filter(cheap), wild_messages,
                       st.sampled_from(["gpt-4o", "", [], {}]))


def corrupt(body: dict, changes: dict, dropped: list) -> dict:
    out = {**body, **changes}
    for k in dropped:
        out.pop(k, None)
    return out


# ... with up to two fields replaced by anything and sometimes one left out: mostly valid, often just not.
requests = st.builds(corrupt, valid, st.dictionaries(st.sampled_from(FIELDS), bad_values, max_size=2),
                     st.lists(st.sampled_from(FIELDS), max_size=1))
bodies = st.one_of(requests, requests, json_values)


# -- the models alone ---------------------------------------------------------------------------------------------

@settings(FUZZ, max_examples=2000)
@given(bodies)
def test_request_models_accept_or_explain_every_body(body):
    try:
        req = ChatCompletionRequest.model_validate(body)
    except ValidationError as e:
        err = _explain(e.errors())
        assert err.status == 400 and err.message
        return
    assert req.messages and (req.token_limit is None or req.token_limit >= 1)
    for name in ("temperature", "top_p", "repetition_penalty"):
        value = getattr(req, name)
        assert value is None or math.isfinite(value)
    try:
        p = to_params(req, GenerateConfig(max_new_tokens=2), None, 90_000)
    except APIError as e:
        assert 400 <= e.status < 500 and e.message
        return
    assert p.cfg.max_new_tokens == (req.token_limit or 2) and 1 <= p.n <= 16
    assert len(p.images) == sum(1 for m in p.messages if isinstance(m["content"], list)
                                for part in m["content"] if part["type"] == "image")


# -- the real server ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def url(tiny_model):
    backend = make_backend("transformers", model=tiny_model)
    cfg = ServeConfig(model="tiny", served_model_name=["tiny", "alias"], max_image_pixels=10_000,
                      generate=GenerateConfig(max_new_tokens=2, batch_size=8), max_body_mb=1.0, batch_wait=0.0,
                      request_timeout=60)
    with running(create_app(cfg, backend=backend)) as u, httpx.Client(base_url=u, timeout=60) as client:
        yield client


def check(r: httpx.Response, sent=None) -> None:
    assert r.status_code == 200 or 400 <= r.status_code < 500, (r.status_code, r.text[:500])
    if r.status_code != 200:
        err = r.json()["error"]
        assert isinstance(err["message"], str) and err["message"] and isinstance(err["type"], str)
        assert "param" in err and "code" in err
        return
    if r.headers["content-type"].startswith("text/event-stream"):
        events = [line.removeprefix("data: ") for line in r.text.splitlines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]" or "error" in json.loads(events[-1])
        return
    out = r.json()
    assert out["object"] == "chat.completion" and out["choices"]
    if isinstance(sent, dict):
        assert len(out["choices"]) == (sent.get("n") or 1)


@settings(FUZZ, max_examples=600)
@given(requests)
def test_server_answers_every_request_with_200_or_an_openai_shaped_4xx(url, body):
    data = json.dumps(body).encode()  # NaN and Infinity as Python writes them (httpx's json= refuses them)
    check(url.post("/v1/chat/completions", content=data, headers={"content-type": "application/json"}), body)


@settings(FUZZ, max_examples=400)
@given(st.one_of(
    st.binary(max_size=200),
    st.tuples(requests, st.integers(min_value=0, max_value=400), st.binary(min_size=0, max_size=4)).map(
        lambda t: json.dumps(t[0]).encode()[:t[1]] + t[2] + json.dumps(t[0]).encode()[t[1]:]),  # bytes spliced in
    st.tuples(requests, st.integers(min_value=0, max_value=400)).map(lambda t: json.dumps(t[0]).encode()[:t[1]]),
    st.integers(min_value=1, max_value=3000).map(lambda d: b"[" * d + b"]" * d),
    st.integers(min_value=1, max_value=6000).map(lambda d: b'{"model": "tiny", "n": ' + b"7" * d + b"}")))
def test_server_answers_every_byte_string_with_an_openai_shaped_4xx_or_200(url, data):
    r = url.post("/v1/chat/completions", content=data, headers={"content-type": "application/json"})
    check(r)


def test_the_server_is_still_healthy_after_the_fuzzing(url):
    h = url.get("/health").json()
    assert h["status"] == "ready" and h["active"] == 0 and h["queued"] == 0
