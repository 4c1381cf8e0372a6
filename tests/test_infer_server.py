"""`virgo serve` for real: uvicorn on a free 127.0.0.1 port with the tiny model, driven by the `openai` client.

The model is random, so a small logits processor (a "script") makes it write the long-thought layout: open the
thought, close it after 5 tokens, a solution of 4 tokens, then end the turn. What is checked is the server's
handling (split, stream, auth, limits, batching) and that it returns exactly what the local backend generates.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import io
import socket
import threading
import time
from collections import Counter

import httpx
import openai
import pytest
from PIL import Image

from virgo.infer import GenerateConfig, GenRequest, make_backend, run_generate, sample_seed
from virgo.infer.backends.openai_backend import to_openai_messages
from virgo.infer.budget import WAIT_TEXT
from virgo.infer.server import ChatCompletionRequest, ServeConfig, create_app, to_params
from virgo.prompts import build_messages
from virgo.records import Generation, Problem, read_records
from virgo.thought import BEGIN_SOLUTION, BEGIN_THOUGHT, END_SOLUTION, END_THOUGHT, Status, parse_response

KEY = "sk-test-key"
BIG = 1e9


class LongThoughtScript:
    """gen[0] opens the thought, gen[6] closes it, gen[7] opens the solution, gen[12] closes it, gen[13] ends.

    When forcing turns the close into "Wait", the script thinks 5 more tokens and tries to close again.
    """

    def __init__(self, tok):
        t = tok.convert_tokens_to_ids
        self.at = {0: t(BEGIN_THOUGHT), 6: t(END_THOUGHT), 7: t(BEGIN_SOLUTION), 12: t(END_SOLUTION),
                   13: t("<|im_end|>")}
        self.wait = tok(WAIT_TEXT, add_special_tokens=False)["input_ids"][-1]
        self.scripted = [*self.at.values(), self.wait]  # the model never picks these by itself

    def __call__(self, gens, scores):
        for b, g in enumerate(gens):
            scores[b, self.scripted] = -BIG
            if self.at[7] in g:  # once a budget forces the close early, go on from where the solution opened
                n = 7 + len(g) - g.index(self.at[7])
            elif self.wait in g:  # the thought was extended: count from the last "Wait" as from the opening
                n = len(g) - (len(g) - 1 - g[::-1].index(self.wait))
            else:
                n = len(g)
            if n in self.at and (n > 6 or self.at[6] not in g):
                scores[b, self.at[n]] = BIG
        return scores


def data_url(im: Image.Image) -> str:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def local(tiny_model):
    script = LongThoughtScript(tiny_model[1].tokenizer)
    return make_backend("transformers", model=tiny_model, logits_processors=[script])


@contextlib.contextmanager
def running(app):
    """``app`` served by uvicorn on a free 127.0.0.1 port in a thread; yields its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        srv.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="module")
def server(tiny_model, local, tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    Image.new("RGB", (40, 40), (200, 30, 30)).save(root / "red.png")
    cfg = ServeConfig(model="tiny", api_key=KEY, image_root=str(root), generate=GenerateConfig(max_new_tokens=20),
                      max_body_mb=1.0, max_image_pixels=300 * 300, batch_wait=0.05)
    app = create_app(cfg, backend=local)
    with running(app) as url:
        yield {"url": url, "base_url": url + "/v1", "root": root, "app": app}


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server["base_url"], api_key=KEY, max_retries=0, timeout=60)


def ask(client, content, **kw):
    return client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": content}], **kw)


def test_models_and_text_completion_split_like_a_reasoning_server(client):
    assert [m.id for m in client.models.list().data] == ["tiny"]
    r = ask(client, "What is 3 + 4?")
    choice = r.choices[0]
    raw = choice.model_extra["virgo"]["text"]
    parsed = parse_response(raw)
    assert parsed.status is Status.COMPLETE and choice.finish_reason == "stop"
    assert choice.message.model_extra["reasoning_content"] == parsed.thought
    assert choice.message.content == parsed.solution
    assert r.usage.completion_tokens == 14 and r.usage.completion_tokens_details.reasoning_tokens == 5


def test_server_returns_what_the_local_backend_generates(client, local):
    r = ask(client, "What is 3 + 4?", max_tokens=10)
    want = local.generate([GenRequest(build_messages("What is 3 + 4?", 0))], GenerateConfig(max_new_tokens=10))[0]
    assert r.choices[0].model_extra["virgo"]["text"] == want.text
    assert r.choices[0].finish_reason == "length" == want.finish_reason


def test_image_as_data_url_and_local_path_under_the_root(client, server):
    red = Image.new("RGB", (40, 40), (200, 30, 30))
    text_only = ask(client, "What colour?", max_tokens=2)
    by_url = ask(client, [{"type": "image_url", "image_url": {"url": data_url(red)}},
                          {"type": "text", "text": "What colour?"}], max_tokens=2)
    by_path = ask(client, [{"type": "image_url", "image_url": {"url": "red.png"}},
                           {"type": "text", "text": "What colour?"}], max_tokens=2)
    assert by_url.usage.prompt_tokens > text_only.usage.prompt_tokens
    assert by_path.usage.prompt_tokens == by_url.usage.prompt_tokens
    assert by_path.choices[0].model_extra["virgo"]["text"] == by_url.choices[0].model_extra["virgo"]["text"]
    outside = server["root"].parent / "secret.png"
    red.save(outside)
    with pytest.raises(openai.PermissionDeniedError, match="outside"):
        ask(client, [{"type": "image_url", "image_url": {"url": str(outside)}}], max_tokens=2)
    with pytest.raises(openai.BadRequestError, match="remote image URLs"):
        ask(client, [{"type": "image_url", "image_url": {"url": "http://example.com/a.png"}}], max_tokens=2)


def test_streaming_sends_reasoning_then_content(client):
    whole = ask(client, "What is 3 + 4?")
    stream = ask(client, "What is 3 + 4?", stream=True, stream_options={"include_usage": True})
    reasoning, content, kinds, finish, usage = [], [], [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            r = (c.delta.model_extra or {}).get("reasoning_content")
            if r:
                reasoning.append(r)
                kinds.append("r")
            if c.delta.content:
                content.append(c.delta.content)
                kinds.append("c")
            finish = c.finish_reason or finish
    assert len(reasoning) > 1 and content and kinds == sorted(kinds, reverse=True)  # all reasoning first
    assert "".join(reasoning) == whole.choices[0].message.model_extra["reasoning_content"]
    assert "".join(content) == whole.choices[0].message.content
    assert finish == "stop" and usage.completion_tokens == whole.usage.completion_tokens


def test_thinking_budget_through_the_server(client):
    r = ask(client, "What is 3 + 4?", extra_body={"thinking_budget": 2})
    info = r.choices[0].model_extra["virgo"]
    assert info["budget_forced"] and info["thought_tokens"] == 2
    assert parse_response(info["text"]).status is Status.COMPLETE


def test_force_wait_through_the_server_extends_the_thought(client):
    plain = ask(client, "What is 3 + 4?")
    forced = ask(client, "What is 3 + 4?", extra_body={"force_wait": 1})
    p, f = (r.choices[0].model_extra["virgo"] for r in (plain, forced))
    assert (p["waits"], f["waits"]) == (0, 1)
    assert f["thought_tokens"] == p["thought_tokens"] + 6  # "Wait" and five more thought tokens, then the close
    thought = forced.choices[0].message.model_extra["reasoning_content"]
    assert "Wait" in thought and "Wait" not in plain.choices[0].message.model_extra["reasoning_content"]
    assert parse_response(f["text"]).status is Status.COMPLETE and not f["budget_forced"]


def test_server_wide_force_wait_default_applies_to_requests_without_one():
    base = GenerateConfig(force_wait=2, thinking_budget=50)  # `virgo serve --force-wait 2 --thinking-budget 50`
    messages = [{"role": "user", "content": "Hi"}]

    def settings(**body):
        return to_params(ChatCompletionRequest.model_validate({"model": "m", "messages": messages, **body}), base,
                         None, 1000).cfg

    default = settings()
    assert (default.force_wait, default.thinking_budget) == (2, 50)
    own = settings(force_wait=0, thinking_budget=0)
    assert (own.force_wait, own.thinking_budget) == (0, 0)  # 0 is a setting, not "use the default"
    assert settings(thinking_budget=None).thinking_budget is None  # an explicit null: no cap, not the default


def test_openai_backend_records_the_seed_it_sent(server, client, tmp_path):
    problems = [Problem(id="s", question="What is 3 + 4?", answer="7")]
    cfg = GenerateConfig(max_new_tokens=8, temperature=1.0, prompt="plain", seed=5)
    run_generate("tiny", problems, tmp_path / "g.jsonl", cfg, backend="openai", base_url=server["base_url"],
                 api_key=KEY, progress=False)
    (g,) = read_records(tmp_path / "g.jsonl", Generation)
    derived = sample_seed(5, "s", 0)
    assert derived >= 2**31 and g.settings["seed"] == derived % 2**31  # folded to what the API takes, as sent

    def replay(seed):
        r = client.chat.completions.create(
            model="tiny", messages=to_openai_messages(build_messages("What is 3 + 4?", 0, prompt="plain"), []),
            max_tokens=8, temperature=1.0, top_p=1.0, seed=seed, extra_body={"repetition_penalty": 1.05})
        return r.choices[0].model_extra["virgo"]

    again = replay(g.settings["seed"])
    assert again["seed"] == g.settings["seed"] and again["text"] == g.text  # the record alone reproduces it
    assert replay(g.settings["seed"] + 1)["text"] != g.text  # and the seed is what decides it


def test_top_k_and_min_p_through_the_server_and_the_openai_backend(client, server, tmp_path):
    """vLLM's extra sampling parameters: top-k 1 (or min-p 1) at temperature 1 answers what greedy decoding answers,
    whatever the seed; top-k -1 is vLLM's "off"; the openai backend sends them (run_generate through the server)."""
    q = "What is 3 + 4?"

    def text(**kw):
        return ask(client, q, max_tokens=16, **kw).choices[0].model_extra["virgo"]["text"]

    greedy = text(temperature=0)
    sampled = [text(temperature=1.0, seed=s) for s in (1, 2)]
    assert any(t != greedy for t in sampled)  # sampling does change the answer here ...
    for s in (1, 2):  # ... unless only the most probable token may be drawn
        assert text(temperature=1.0, seed=s, extra_body={"top_k": 1}) == greedy
        assert text(temperature=1.0, seed=s, extra_body={"min_p": 1.0}) == greedy
    assert text(temperature=1.0, seed=1, extra_body={"top_k": -1}) == sampled[0]

    problems = [Problem(id="t", question=q, answer="7")]
    cfg = GenerateConfig(max_new_tokens=16, prompt="plain", temperature=1.0, seed=3)
    runs = {}
    for name, c in (("greedy", cfg.replace(temperature=0.0)), ("top_k", cfg.replace(top_k=1)),
                    ("min_p", cfg.replace(min_p=1.0)), ("sampled", cfg)):
        run_generate("tiny", problems, tmp_path / f"{name}.jsonl", c, backend="openai", base_url=server["base_url"],
                     api_key=KEY, progress=False)
        (runs[name],) = read_records(tmp_path / f"{name}.jsonl", Generation)
    assert runs["top_k"].text == runs["min_p"].text == runs["greedy"].text != runs["sampled"].text
    assert runs["top_k"].settings["top_k"] == 1 and "top_k" not in runs["sampled"].settings


def test_presence_and_frequency_penalties_through_the_server_equal_local_generation(server, local, client, tmp_path):
    """OpenAI's own penalty fields: the server applies them as the local backend does, and the openai backend sends
    them (run_generate through the server equals run_generate in process)."""
    problems = [Problem(id="t", question="What is 3 + 4?", answer="7")]
    cfg = GenerateConfig(max_new_tokens=16, prompt="plain", presence_penalty=1.5, frequency_penalty=0.5)
    run_generate("tiny", problems, tmp_path / "remote.jsonl", cfg, backend="openai", base_url=server["base_url"],
                 api_key=KEY, progress=False)
    run_generate(local, problems, tmp_path / "local.jsonl", cfg, progress=False)
    run_generate(local, problems, tmp_path / "plain.jsonl", cfg.replace(presence_penalty=0.0, frequency_penalty=0.0),
                 progress=False)
    (remote,), (here,), (plain,) = (read_records(tmp_path / f"{n}.jsonl", Generation)
                                    for n in ("remote", "local", "plain"))
    assert remote.text == here.text != plain.text
    assert remote.settings["presence_penalty"] == 1.5 and remote.settings["frequency_penalty"] == 0.5


def test_a_request_says_every_setting_so_server_defaults_never_change_the_text(local, tmp_path):
    """A server fills what a request leaves out with its own defaults (vLLM: the model's generation_config.json,
    top-k 1 for Qwen2-VL-Instruct; `virgo serve`: its command line). Against a server whose every default differs
    from the client's settings, the openai backend's run and `virgo chat`'s remote turn equal local generation
    with the client's settings, and the record says what made the text."""
    from virgo.infer.chat import stream_remote
    from virgo.infer.split import ANSWER, THOUGHT, split_reasoning

    opinionated = GenerateConfig(max_new_tokens=16, top_k=1, min_p=0.9, repetition_penalty=1.8, presence_penalty=1.5,
                                 frequency_penalty=1.0, force_wait=2, thinking_budget=3)
    cfg = GenerateConfig(max_new_tokens=16, prompt="plain", temperature=1.0, seed=3, repetition_penalty=1.0)
    problems = [Problem(id="t", question="What is 3 + 4?", answer="7")]
    run_generate(local, problems, tmp_path / "local.jsonl", cfg, progress=False)
    (here,) = read_records(tmp_path / "local.jsonl", Generation)
    app = create_app(ServeConfig(model="tiny", api_key=KEY, generate=opinionated, batch_wait=0.0), backend=local)
    with running(app) as url:
        run_generate("tiny", problems, tmp_path / "remote.jsonl", cfg, backend="openai", base_url=url + "/v1",
                     api_key=KEY, progress=False)
        client = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0, timeout=60)
        messages = build_messages("What is 3 + 4?", 0, prompt="plain")
        bare = client.chat.completions.create(model="tiny", messages=to_openai_messages(messages, []),
                                              temperature=1.0, seed=1)
        shown: list[tuple[str, str]] = []
        answer, finish = stream_remote(client, "tiny", messages, [], cfg, shown.extend)
    (remote,) = read_records(tmp_path / "remote.jsonl", Generation)
    assert remote.text == here.text and remote.settings["repetition_penalty"] == 1.0
    assert "top_k" not in remote.settings and remote.settings["thinking_budget"] is None
    assert remote.thought_tokens == here.thought_tokens and WAIT_TEXT not in remote.text
    assert bare.choices[0].model_extra["virgo"]["budget_forced"]  # what the server's defaults alone make: capped
    seed = sample_seed(cfg.seed, "chat", 0) % 2**31
    (own,) = local.generate([GenRequest(messages, [], id="chat", seed=seed)], cfg)
    thought, want = split_reasoning(own.text)
    assert answer == want and finish == own.finish_reason == "stop"
    assert "".join(t for kind, t in shown if kind == THOUGHT) == thought
    assert "".join(t for kind, t in shown if kind == ANSWER) == answer


def test_without_sampling_extras_only_openai_fields_go_and_a_setting_beyond_them_stops_the_run(local, tmp_path):
    """For an API that rejects unknown fields: the body holds OpenAI's fields only (as the server received it), and
    a run whose settings need more (the paper's repetition penalty 1.05) stops before any request rather than write
    records of settings the API never got."""
    problems = [Problem(id="t", question="What is 3 + 4?", answer="7")]
    cfg = GenerateConfig(max_new_tokens=8, prompt="plain", repetition_penalty=1.0, presence_penalty=0.5)
    bodies = []
    served = GenerateConfig(max_new_tokens=8, repetition_penalty=1.0)  # an API whose defaults are this run's
    app = create_app(ServeConfig(model="tiny", api_key=KEY, generate=served, batch_wait=0.0), backend=local)

    @app.middleware("http")
    async def keep_body(request, call_next):
        if request.method == "POST":
            bodies.append(await request.json())
        return await call_next(request)

    with running(app) as url:
        kw = {"backend": "openai", "base_url": url + "/v1", "api_key": KEY, "progress": False}
        run_generate("tiny", problems, tmp_path / "plain.jsonl", cfg, sampling_extras=False, **kw)
        run_generate("tiny", problems, tmp_path / "all.jsonl", cfg, **kw)
        with pytest.raises(ValueError, match="repetition_penalty 1.05, top_k 5: not an OpenAI API field"):
            run_generate("tiny", problems, tmp_path / "paper.jsonl", cfg.replace(repetition_penalty=1.05, top_k=5),
                         sampling_extras=False, **kw)
    sent_plain, sent_all = bodies  # and nothing from the refused run
    assert not (tmp_path / "paper.jsonl").exists() or not (tmp_path / "paper.jsonl").read_text().strip()
    openai_fields = {"model", "messages", "max_tokens", "temperature", "top_p", "seed", "presence_penalty"}
    assert set(sent_plain) == openai_fields
    assert set(sent_all) == openai_fields | {"stop", "frequency_penalty", "repetition_penalty", "top_k", "min_p",
                                             "thinking_budget", "force_wait", "skip_special_tokens"}
    assert (sent_all["top_k"], sent_all["min_p"], sent_all["thinking_budget"], sent_all["force_wait"],
            sent_all["stop"]) == (-1, 0.0, None, 0, [])
    (a,), (b,) = (read_records(tmp_path / f"{n}.jsonl", Generation) for n in ("plain", "all"))
    assert a.text == b.text  # the same text either way


def test_one_run_over_replicas_spreads_its_requests_and_survives_a_dead_and_a_failing_one(server, tmp_path):
    """`--replicas`: two live endpoints of the same model share the requests; a dead one (nothing listens) and one
    that answers every generation with a 500 cost attempts, never records; the sampled records equal those of a
    run through one endpoint (each request carries its seed, whichever endpoint answers)."""
    import warnings

    from virgo.distill.faults import FaultProxy

    problems = [Problem(id=f"p{i}", question=f"What is {i} + 2?", answer=str(i + 2)) for i in range(8)]
    cfg = GenerateConfig(max_new_tokens=8, prompt="plain", temperature=1.0, seed=4)
    run_generate("tiny", problems, tmp_path / "one.jsonl", cfg, backend="openai", base_url=server["base_url"],
                 api_key=KEY, progress=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"  # closed once the block ends: nothing listens
    with FaultProxy(server["url"]) as a, FaultProxy(server["url"]) as b, \
            FaultProxy(server["url"], shares={"500": 1.0}) as failing:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            be = make_backend("openai", "tiny", base_url=a.url + "/v1", api_key=KEY, concurrency=2, backoff=0.05,
                              replicas=[b.url + "/v1", dead, failing.url + "/v1"])
        assert any(dead in str(w.message) for w in caught)  # unreachable at the start: warned, kept for later
        summary = run_generate(be, problems, tmp_path / "remote.jsonl", cfg, progress=False)
    assert summary["generated"] == 8 and "failed" not in summary
    stats = summary["endpoints"]
    assert stats[a.url + "/v1"]["answered"] > 0 and stats[b.url + "/v1"]["answered"] > 0
    assert stats[a.url + "/v1"]["answered"] + stats[b.url + "/v1"]["answered"] == 8
    assert stats[dead]["answered"] == stats[failing.url + "/v1"]["answered"] == 0
    assert stats[dead]["failed"] + stats[failing.url + "/v1"]["failed"] == be.attempts - 8 > 0
    assert failing.counts["500"] == stats[failing.url + "/v1"]["failed"]
    records = read_records(tmp_path / "remote.jsonl", Generation)
    assert {g.id: g.text for g in records} == {g.id: g.text for g in read_records(tmp_path / "one.jsonl", Generation)}
    by_endpoint = Counter(g.extra["endpoint"] for g in records)  # each record names the replica that answered it
    assert by_endpoint == {u: stats[u]["answered"] for u in (a.url + "/v1", b.url + "/v1")}


def test_a_replica_serving_another_model_is_refused(server, local):
    other = create_app(ServeConfig(model="other", api_key=KEY, generate=GenerateConfig(max_new_tokens=4)),
                       backend=local)
    with running(other) as url, pytest.raises(ValueError, match=r"does not serve 'tiny' \(it serves other\)"):
        make_backend("openai", "tiny", base_url=server["base_url"], api_key=KEY, replicas=[url + "/v1"])


def test_stop_strings_through_the_server_streamed_or_not_and_the_openai_backend(server, local, client, tmp_path):
    """A stop string (here the end-of-thought marker, as text) ends the output before it: the server answers what
    the local backend makes, streamed or not, in either of OpenAI's forms (a string or a list)."""
    q = "What is 3 + 4?"
    plain = ask(client, q, max_tokens=16).choices[0].model_extra["virgo"]["text"]
    assert END_THOUGHT in plain
    r = ask(client, q, max_tokens=16, stop=END_THOUGHT)
    got = r.choices[0].model_extra["virgo"]
    assert got["text"] == plain[:plain.index(END_THOUGHT)] and r.choices[0].finish_reason == "stop"
    assert ask(client, q, max_tokens=16, stop=["nowhere", END_THOUGHT]).choices[0].model_extra["virgo"]["text"] == \
        got["text"]
    streamed = ask(client, q, max_tokens=16, stop=[END_THOUGHT], stream=True)
    parts = [(c.delta.model_extra or {}).get("reasoning_content") or c.delta.content or ""
             for chunk in streamed for c in chunk.choices]
    message = r.choices[0].message
    assert "".join(parts) == (message.model_extra.get("reasoning_content") or "") + (message.content or "")
    assert END_THOUGHT not in "".join(parts)

    problems = [Problem(id="t", question=q, answer="7")]
    cfg = GenerateConfig(max_new_tokens=16, prompt="plain", stop=[BEGIN_SOLUTION])
    run_generate("tiny", problems, tmp_path / "remote.jsonl", cfg, backend="openai", base_url=server["base_url"],
                 api_key=KEY, progress=False)
    run_generate(local, problems, tmp_path / "local.jsonl", cfg, progress=False)
    (remote,), (here,) = (read_records(tmp_path / f"{n}.jsonl", Generation) for n in ("remote", "local"))
    assert remote.text == here.text and remote.text.endswith(END_THOUGHT) and remote.finish_reason == "stop"
    assert remote.settings["stop"] == [BEGIN_SOLUTION]


def test_bad_key_is_401(server):
    bad = openai.OpenAI(base_url=server["base_url"], api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    assert httpx.post(server["base_url"] + "/chat/completions", json={}).status_code == 401


def test_oversized_image_and_body_are_rejected(client, server):
    huge = Image.new("RGB", (400, 400), (0, 0, 0))  # 160,000 pixels > the 90,000 limit (a tiny PNG)
    with pytest.raises(openai.BadRequestError, match="over the limit"):
        ask(client, [{"type": "image_url", "image_url": {"url": data_url(huge)}}])
    r = httpx.post(server["base_url"] + "/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                   json={"messages": [{"role": "user", "content": "x" * 1_200_000}]})
    assert r.status_code == 413 and "larger than" in r.json()["error"]["message"]


def test_twenty_concurrent_requests_are_all_answered_in_batches(client, server):
    worker = server["app"].state.worker
    before = worker.stats["batches"]
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda i: ask(client, f"What is {i} + {i}?", max_tokens=8), range(20)))
    assert len(results) == 20 and all(r.choices[0].finish_reason == "length" for r in results)
    sizes = list(worker.recent_batches)[-int(worker.stats["batches"] - before):]
    assert sum(sizes) == 20 and max(sizes) > 1


def test_openai_backend_against_the_server_equals_local_generation(server, local, tmp_path):
    img = server["root"] / "red.png"
    problems = [Problem(id="t", question="What is 3 + 4?", answer="7"),
                Problem(id="i", question="What colour?", answer="red", images=[str(img)])]
    cfg = GenerateConfig(max_new_tokens=16, prompt="plain")
    remote = run_generate("tiny", problems, tmp_path / "remote.jsonl", cfg, backend="openai",
                          base_url=server["base_url"], api_key=KEY, progress=False)
    run_generate(local, problems, tmp_path / "local.jsonl", cfg, progress=False)
    assert remote["generated"] == 2
    got = {g.id: g for g in read_records(tmp_path / "remote.jsonl", Generation)}
    want = {g.id: g for g in read_records(tmp_path / "local.jsonl", Generation)}
    for k in ("t", "i"):
        assert (got[k].text, got[k].status, got[k].thought_tokens, got[k].completion_tokens) == \
               (want[k].text, want[k].status, want[k].thought_tokens, want[k].completion_tokens)
        assert got[k].settings["backend"] == "openai" and got[k].model == "tiny"


def test_openai_backend_retries_through_faults(server, tmp_path):
    from virgo.distill.faults import FaultProxy

    problems = [Problem(id=f"p{i}", question=f"What is {i} + 1?", answer=str(i + 1)) for i in range(6)]
    cfg = GenerateConfig(max_new_tokens=4, prompt="plain")
    with FaultProxy(server["url"], shares={"500": 0.3, "malformed": 0.2}, seed=1) as proxy:
        # Half the requests fault: enough retries that no request meets a fault on every attempt (with 5, one
        # in ~60 did, depending on how the threads interleave with the proxy's seeded schedule).
        be = make_backend("openai", "tiny", base_url=proxy.url + "/v1", api_key=KEY, concurrency=3, backoff=0.01,
                          max_retries=8)
        summary = run_generate(be, problems, tmp_path / "g.jsonl", cfg, progress=False)
        faults = proxy.counts["500"] + proxy.counts["malformed"]
    assert summary["generated"] == 6 and "failed" not in summary
    assert faults > 0 and be.attempts == 6 + faults
    assert len(read_records(tmp_path / "g.jsonl", Generation)) == 6
