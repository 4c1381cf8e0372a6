"""The fault-injecting proxy itself, in front of a plain real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from virgo.distill.faults import MALFORMED_BODY, FaultProxy


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        out = json.dumps({"echo": json.loads(body), "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST


@pytest.fixture()
def upstream():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def post(url, payload, timeout):
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (TimeoutError, urllib.error.URLError, ConnectionError) as e:
        return "timeout", repr(e)


def test_proxy_injects_the_set_shares_and_forwards_the_rest(upstream):
    shares = {"500": 0.2, "hang": 0.1, "malformed": 0.2}
    with FaultProxy(upstream, shares=shares, seed=7, hang_seconds=3) as proxy:
        results = [post(proxy.url + "/v1/chat/completions", {"i": i}, timeout=0.3) for i in range(60)]
        # A path without faults (e.g. a health probe) is always forwarded.
        assert post(proxy.url + "/health", {"x": 1}, timeout=2)[0] == 200
    kinds = []
    for i, (status, body) in enumerate(results):
        if status == 200 and body == MALFORMED_BODY:
            kinds.append("malformed")
        elif status == 200:
            assert json.loads(body) == {"echo": {"i": i}, "path": "/v1/chat/completions"}
            kinds.append("forwarded")
        elif status == 500:
            kinds.append("500")
        else:
            assert status == "timeout"
            kinds.append("hang")
    counts = {k: kinds.count(k) for k in set(kinds)}
    # What the client saw is what the proxy counted (+ the forwarded health probe).
    assert dict(proxy.counts) == {**counts, "forwarded": counts["forwarded"] + 1}
    # Every fault kind occurred, near its share (seeded: the same schedule every run).
    for k, share in shares.items():
        assert 0 < counts[k] <= 2 * share * 60


def test_proxy_refuses_bad_settings(upstream):
    with pytest.raises(ValueError, match="unknown fault"):
        FaultProxy(upstream, shares={"teapot": 0.1})
    with pytest.raises(ValueError, match="add up"):
        FaultProxy(upstream, shares={"500": 0.7, "hang": 0.5})
