"""`virgo serve` under load (issue 18), bounded and on localhost: the server runs in its own process (uvicorn on a
free 127.0.0.1 port, the tiny model, a queue bound of 64) so its memory is measured alone.

- 1,000 requests from 200 concurrent clients: every one gets 200 or 429, none a 5xx, and the queue never holds
  more than its bound;
- the server's resident memory after the storm is back within a stated tolerance of what it was before;
- clients that disconnect, while decoding or while waiting, free their slots, each within one decoding step.

The model's stop tokens are banned, so every request decodes exactly its ``max_tokens`` (2 in the storm), and a
request with a huge ``max_tokens`` runs until it is stopped.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import httpx
import psutil
import pytest
from test_infer_server_hardening import LONG, body, open_request, wait_until

pytestmark = pytest.mark.slow

MAX_QUEUE = 64
BATCH = 16
# Resident memory may stay above its pre-storm level by this much: allocator arenas keep some pages after 200
# connections are gone. Measured: +1 to +3 MiB after the first 1,000 requests, then flat (+20 KiB per 1,000) over
# 7,000 more. Keeping 16 KiB per request (a request's body and prompt) would exceed it.
RSS_TOLERANCE = 16 * 2**20

TESTS = os.path.dirname(os.path.abspath(__file__))
SERVER = textwrap.dedent(f"""
    import sys

    sys.path.insert(0, {TESTS!r})
    from test_infer_server_hardening import NeverStop

    from virgo.infer import GenerateConfig, make_backend
    from virgo.infer.server import ServeConfig, serve

    model_dir, port = sys.argv[1], int(sys.argv[2])
    backend = make_backend("transformers", model=model_dir)
    backend.decoder.logits_processors.append(NeverStop(backend.decoder.stop_ids))
    cfg = ServeConfig(model=model_dir, served_model_name=["tiny"], port=port, max_queue={MAX_QUEUE},
                      request_timeout=120, generate=GenerateConfig(max_new_tokens=2, batch_size={BATCH}),
                      log_level="warning")
    serve(cfg, backend=backend)
""")


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    script = tmp_path_factory.mktemp("stress") / "serve_tiny.py"
    script.write_text(SERVER)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen([sys.executable, str(script), str(tiny_model_dir), str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the server did not come up"
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def health(url):
    return httpx.get(url + "/health", timeout=30).json()


async def storm(url: str, total: int, clients: int) -> collections.Counter:
    """``total`` requests from ``clients`` concurrent clients, each sending its next as soon as one is answered."""
    statuses: collections.Counter = collections.Counter()
    left = iter(range(total))
    # A new connection per request: a kept-alive connection that the server closes after its idle timeout just as
    # a starved client reuses it fails on the client's side (a POST is not retried), which is not the server's
    # doing; on this busy machine that happened to 4 of 1,000 requests.
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        async def one_client() -> None:
            for i in left:
                r = await client.post(url + "/v1/chat/completions",
                                      json=body(max_tokens=2, messages=[{"role": "user", "content": f"{i} + 1?"}]))
                statuses[r.status_code] += 1
                if r.status_code not in (200, 429):
                    statuses[f"{r.status_code}: {r.text[:200]}"] += 1
                elif r.status_code == 429:
                    assert int(r.headers["retry-after"]) >= 1 and r.json()["error"]["code"] == "queue_full"
                else:
                    assert r.json()["usage"]["completion_tokens"] == 2

        await asyncio.gather(*(one_client() for _ in range(clients)))
    return statuses


def rss(proc) -> int:
    return psutil.Process(proc.pid).memory_info().rss


def idle(url) -> bool:
    h = health(url)
    return h["active"] == 0 and h["queued"] == 0


def test_a_thousand_requests_from_200_clients_get_200_or_429_and_memory_returns(server):
    url, proc = server
    asyncio.run(storm(url, total=200, clients=200))  # warm-up: pools, arenas and lazy imports grow once
    wait_until(lambda: idle(url), "the server to be idle")
    baseline = rss(proc)

    statuses = asyncio.run(storm(url, total=1000, clients=200))
    assert sum(n for k, n in statuses.items() if k in (200, 429)) == 1000, statuses
    assert set(statuses) <= {200, 429}, statuses  # no 5xx, nothing else
    assert statuses[200] >= MAX_QUEUE and statuses[429] > 0  # the queue filled, and it was bounded
    h = health(url)
    assert h["stats"]["max_queued"] <= MAX_QUEUE and h["stats"]["failed"] == 0

    wait_until(lambda: idle(url), "the server to be idle")
    after = rss(proc)
    print(f"server RSS: {baseline / 2**20:.1f} MiB before, {after / 2**20:.1f} MiB after 1,000 requests "
          f"({statuses[200]} x 200, {statuses[429]} x 429)")
    assert after - baseline <= RSS_TOLERANCE, (baseline, after)
    assert health(url)["status"] == "ready"


def test_clients_that_disconnect_under_load_free_their_slots_within_one_decoding_step(server):
    url, _proc = server
    before = health(url)["stats"]
    socks = [open_request(url, body(max_tokens=LONG)) for _ in range(BATCH + 12)]

    def all_in() -> bool:  # the first batch holds those that arrived in time; the rest wait behind it
        h = health(url)
        return h["active"] >= 1 and h["active"] + h["queued"] == BATCH + 12

    wait_until(all_in, "every request to be decoding or waiting")
    time.sleep(0.2)
    for s in socks:
        s.close()
    wait_until(lambda: idle(url), "every abandoned request to leave", 10)
    after = health(url)["stats"]
    assert after["cancelled"] - before["cancelled"] == BATCH + 12 and after["completed"] == before["completed"]
    assert after["max_stop_lag_steps"] <= 1  # each decoding row was dropped at its first step after the close
    r = httpx.post(url + "/v1/chat/completions", json=body(max_tokens=2), timeout=60)
    assert r.status_code == 200


def test_the_server_stops_promptly_with_requests_in_flight(server):
    url, proc = server
    socks = [open_request(url, body(max_tokens=LONG, stream=stream)) for stream in (False, True)]
    wait_until(lambda: health(url)["active"] == 2, "two long requests to be decoded")
    t0 = time.monotonic()
    proc.terminate()  # SIGTERM, as a service manager stops it
    code = proc.wait(timeout=60)
    took = time.monotonic() - t0
    answers = []
    for s in socks:
        s.settimeout(10)
        answers.append(b"".join(iter(lambda s=s: s.recv(65536), b"")))
        s.close()
    assert answers[0].startswith(b"HTTP/1.1 503") and b'"code":"shutdown"' in answers[0]
    assert answers[1].startswith(b"HTTP/1.1 200") and b'"code":"shutdown"' in answers[1]  # the stream's last event
    log = proc.stderr.read().decode()
    assert code in (0, -signal.SIGTERM) and "Traceback" not in log, log[-3000:]  # uvicorn re-raises the signal
    assert took < 30  # the grace period (5 s), not the requests' 1,000,000 tokens
    print(f"stopped {took:.1f} s after SIGTERM with two requests in flight")
