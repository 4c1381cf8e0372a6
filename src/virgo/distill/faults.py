"""A fault-injecting reverse proxy for testing long rollout jobs against an unreliable server.

It sits in front of a real OpenAI-compatible server (``virgo serve``, a ``vllm serve``) on 127.0.0.1 and,
for a set share of the generation requests, answers HTTP 500, hangs for ``hang_seconds`` without answering
(then drops the connection), or returns a 200 whose body is malformed JSON; every other request is forwarded
as is. A hang tests the client's timeout only when ``hang_seconds`` exceeds that timeout (e.g. ``virgo
distill --timeout 3`` against ``hang_seconds=120``); a shorter hang is just a slow, dropped request.
The faults are drawn from a seeded generator, so a test run sees the same schedule every time.

    with FaultProxy("http://127.0.0.1:8000", shares={"500": 0.2, "hang": 0.1, "malformed": 0.1}) as proxy:
        ... point the client at proxy.url ...

Also runnable: ``python -m virgo.distill.faults --upstream URL --port 8001 --share-500 0.2``.
"""

from __future__ import annotations

import argparse
import http.client
import random
import threading
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self needs Python 3.11

FAULTS = ("500", "hang", "malformed")
# Only generation calls get faults: a client's health or model-list probe is not what is being tested.
DEFAULT_FAULT_PATHS = ("/v1/chat/completions", "/v1/completions")
MALFORMED_BODY = b'{"id": "chatcmpl-fault", "object": "chat.completion", "choices": [{"index": 0, "message": {"ro'
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "proxy-connection"}


class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 that injects faults into a share of the requests."""

    def __init__(self, upstream: str, *, shares: dict[str, float] | None = None, seed: int = 0, port: int = 0,
                 hang_seconds: float = 30.0, delay_seconds: float = 0.0,
                 fault_paths: tuple[str, ...] = DEFAULT_FAULT_PATHS, upstream_timeout: float = 300.0):
        shares = dict(shares or {})
        unknown = set(shares) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULTS}")
        if sum(shares.values()) > 1.0 or any(v < 0 for v in shares.values()):
            raise ValueError(f"fault shares must be >= 0 and add up to at most 1, got {shares}")
        u = urllib.parse.urlsplit(upstream)
        if u.scheme != "http" or not u.hostname:
            raise ValueError(f"upstream must be an http://host:port URL, got {upstream!r}")
        self.upstream_host, self.upstream_port = u.hostname, u.port or 80
        self.upstream_prefix = u.path.rstrip("/")
        self.shares = shares
        self.hang_seconds = hang_seconds
        self.delay_seconds = delay_seconds  # added before forwarding generation calls: a slow server
        self.fault_paths = fault_paths
        self.upstream_timeout = upstream_timeout
        self.counts: Counter[str] = Counter()  # "forwarded", "500", "hang", "malformed", "upstream_error"
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()  # releases hanging handlers on shutdown
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def faultable(self, path: str) -> bool:
        return any(path.split("?")[0].endswith(p) for p in self.fault_paths)

    def draw(self, path: str) -> str:
        """The fate of one request: a fault kind or "forward"."""
        if not self.faultable(path):
            return "forward"
        with self._lock:
            x = self._rng.random()
        for kind in FAULTS:
            share = self.shares.get(kind, 0.0)
            if x < share:
                return kind
            x -= share
        return "forward"

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet: tests read proxy.counts
                pass

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                body = self._body()
                fate = proxy.draw(self.path)
                proxy._count(fate if fate != "forward" else "forwarded")
                if fate == "500":
                    self._reply(500, b'{"error": {"message": "injected fault", "type": "server_error"}}')
                    return
                if fate == "hang":
                    # Hold the request unanswered (the client times out first if its timeout is shorter),
                    # then drop the connection.
                    proxy._stop.wait(proxy.hang_seconds)
                    self.close_connection = True
                    return
                if fate == "malformed":
                    self._reply(200, MALFORMED_BODY)
                    return
                if proxy.delay_seconds and proxy.faultable(self.path):
                    proxy._stop.wait(proxy.delay_seconds)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port,
                                                  timeout=proxy.upstream_timeout)
                try:
                    conn.request(self.command, proxy.upstream_prefix + self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except OSError as e:
                    proxy._count("upstream_error")
                    self._reply(502, f'{{"error": {{"message": "upstream: {type(e).__name__}"}}}}'.encode())
                    return
                finally:
                    conn.close()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in _HOP_HEADERS:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        return Handler


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Fault-injecting reverse proxy for OpenAI-compatible servers.")
    ap.add_argument("--upstream", required=True, help="server to forward to, e.g. http://127.0.0.1:8000")
    ap.add_argument("--port", type=int, default=0, help="port to listen on (127.0.0.1); 0 picks a free one")
    ap.add_argument("--share-500", type=float, default=0.0, help="share of generation requests answered HTTP 500")
    ap.add_argument("--share-hang", type=float, default=0.0, help="share that hang for --hang-seconds, then drop")
    ap.add_argument("--share-malformed", type=float, default=0.0, help="share answered 200 with malformed JSON")
    ap.add_argument("--hang-seconds", type=float, default=30.0)
    ap.add_argument("--delay-seconds", type=float, default=0.0, help="delay before forwarding (a slow server)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    proxy = FaultProxy(a.upstream, shares={"500": a.share_500, "hang": a.share_hang, "malformed": a.share_malformed},
                       seed=a.seed, port=a.port, hang_seconds=a.hang_seconds,
                       delay_seconds=a.delay_seconds)
    print(f"fault proxy on {proxy.url} -> {a.upstream}", flush=True)
    try:
        proxy._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        proxy._stop.set()
        proxy._server.server_close()


if __name__ == "__main__":
    main()
