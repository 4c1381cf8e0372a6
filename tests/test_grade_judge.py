"""The optional LLM judge against a real OpenAI-compatible HTTP server on 127.0.0.1, with its on-disk cache.

The server is a small ``http.server`` app that speaks the chat-completions format (``GET /v1/models``,
``POST /v1/chat/completions``), checks the API key, and judges like a strict-but-fair grader would: for the
score prompt it answers 1 when every word of the standard answer appears in the model's answer; for the
extract prompt it returns the last number of the response, or "null".
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from virgo.grade import Judge, grade_many
from virgo.grade.judge import load_judge_prompt
from virgo.records import Generation, Grade, Problem, read_records, write_records

KEY = "sk-virgo-test"
MODEL = "judge-mini"


class _JudgeHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0,
                                                         "owned_by": "test"}]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            self._send(401, {"error": {"message": "bad key", "type": "invalid_request_error"}})
            return
        prompt = body["messages"][-1]["content"]
        self.server.prompts.append(prompt)
        if "Judement" in prompt:  # the score prompt: judge the last [Standard Answer] / [Model_answer] pair
            gold = re.findall(r"\[Standard Answer\]: (.*)", prompt)[-1]
            answer = re.findall(r"\[Model_answer\] : (.*)", prompt)[-1]
            words = re.findall(r"\w+", gold.lower())
            reply = "1" if words and all(w in answer.lower() for w in words) else "0"
        else:  # the extract prompt: the last model response
            response = prompt.rsplit("Model response: '", 1)[-1]
            numbers = re.findall(r"\d+", response)
            reply = f"Extracted Answer: {numbers[-1]}" if numbers else "null"
        self._send(200, {
            "id": f"chatcmpl-{len(self.server.prompts)}", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": 1,
                      "total_tokens": len(prompt.split()) + 1},
        })


@pytest.fixture()
def judge_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JudgeHandler)
    server.prompts = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _items():
    bugs = Problem(id="bugs", question="Who is the rabbit?", answer="Bugs Bunny")
    six = Problem(id="six", question="What is 6 * 7?", answer="42")
    return [
        (bugs, Generation(id="bugs", sample=0, text=r"\boxed{\text{Bunny, Bugs}}", finish_reason="stop")),  # undecided
        (six, Generation(id="six", sample=0, text=r"\boxed{43}", finish_reason="stop")),  # decided wrong
        (six, Generation(id="six", sample=1, text=r"\boxed{42}", finish_reason="stop")),  # decided correct
        (six, Generation(id="six", sample=2, text="Six times seven: I counted 42 dots in the grid, I think.",
                         finish_reason="stop")),  # no_answer for the rules
        (six, Generation(id="six", sample=3, text="<|begin_of_thought|>\n\nSix sevens are", finish_reason="length")),
    ]


def test_judge_decides_only_what_the_rules_left_open(judge_server, tmp_path, monkeypatch):
    server, url = judge_server
    monkeypatch.setenv("VIRGO_JUDGE_API_KEY", KEY)
    items = _items()
    rules = grade_many(items, workers=0)
    assert [g.verdict for g in rules] == ["wrong", "wrong", "correct", "no_answer", "truncated"]
    assert rules[0].extra.get("undecided") and not rules[1].extra.get("undecided")

    judge = Judge(url, cache_path=tmp_path / "judge-cache.jsonl")  # model: the first one the server lists
    grades = grade_many(items, workers=0, judge=judge)
    judge.close()

    assert judge.model == MODEL
    assert [g.verdict for g in grades] == ["correct", "wrong", "correct", "correct", "truncated"]
    assert [g.graded_by for g in grades] == ["judge", "numeric", "exact", "judge", "finish_reason"]
    assert grades[0].extracted == r"\text{Bunny, Bugs}" and "rules said wrong (string)" in grades[0].detail
    assert (grades[3].extracted, grades[3].extracted_by) == ("42", "judge")
    assert "undecided" not in grades[0].extra
    # One score for the undecided item, one extraction + one score for the unanswered one; nothing else.
    assert len(server.prompts) == 3 and judge.requests == 3
    assert server.prompts[0].startswith(load_judge_prompt("score")[:40]) or \
        server.prompts[0].startswith(load_judge_prompt("extract")[:40])
    assert sum("Judement" in p for p in server.prompts) == 2

    # A second run reads every reply from the cache on disk: no HTTP call at all.
    again = Judge(url, model=MODEL, cache_path=tmp_path / "judge-cache.jsonl")
    assert grade_many(items, workers=2, judge=again) == grades
    again.close()
    assert again.requests == 0 and len(server.prompts) == 3
    cached = [json.loads(line) for line in (tmp_path / "judge-cache.jsonl").read_text().splitlines()]
    assert sorted(r["kind"] for r in cached) == ["extract", "score", "score"]


def test_a_failing_judge_keeps_the_rule_grade(judge_server, tmp_path, monkeypatch):
    _, url = judge_server
    monkeypatch.setenv("VIRGO_JUDGE_API_KEY", "sk-wrong-key")  # the server answers 401
    judge = Judge(url, model=MODEL, cache_path=tmp_path / "cache.jsonl", max_attempts=1)
    grades = grade_many(_items()[:1], workers=0, judge=judge)
    judge.close()
    assert grades[0].verdict == "wrong" and grades[0].graded_by == "string"
    assert "judge failed" in grades[0].detail and grades[0].extra.get("undecided")
    assert not (tmp_path / "cache.jsonl").exists() or not (tmp_path / "cache.jsonl").read_text().strip()


def test_judge_needs_an_endpoint(monkeypatch):
    for var in ("VIRGO_JUDGE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError, match="no judge endpoint"):
        Judge()


def test_virgo_grade_with_a_judge_url(judge_server, tmp_path):
    """The CLI end to end with --judge-url; a second run (--overwrite) is served from the judge cache."""
    server, url = judge_server
    items = _items()
    write_records(tmp_path / "problems.jsonl", list({p.id: p for p, _ in items}.values()))
    write_records(tmp_path / "generations.jsonl", [g for _, g in items])
    args = [sys.executable, "-m", "virgo", "grade", "--problems", str(tmp_path / "problems.jsonl"),
            "--generations", str(tmp_path / "generations.jsonl"), "--out", str(tmp_path / "grades.jsonl"),
            "--judge-url", url, "--judge-model", MODEL, "--judge-cache", str(tmp_path / "cache.jsonl"),
            "--workers", "1", "--overwrite"]
    env = {**os.environ, "VIRGO_JUDGE_API_KEY": KEY, "COLUMNS": "160"}
    for run in range(2):
        done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, check=False)
        assert done.returncode == 0, done.stderr
        grades = read_records(tmp_path / "grades.jsonl", Grade)
        assert [g.verdict for g in grades] == ["correct", "wrong", "correct", "correct", "truncated"]
        assert [g.graded_by for g in grades].count("judge") == 2
        assert "judge" in done.stdout and "accuracy = 60.00%" in done.stdout
        assert len(server.prompts) == 3, f"run {run + 1} asked the server again"
