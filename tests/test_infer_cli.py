"""The commands: `virgo generate` killed with SIGKILL mid-run and rerun gives one record per pair (a real
subprocess), `virgo chat` streams the thought and the answer apart, clear errors for bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

from virgo.cli import app
from virgo.infer import GenerateConfig, make_backend, run_generate
from virgo.infer.chat import chat
from virgo.records import Generation, Problem, read_records, write_records


def make_problems(tmp_path, n=10):
    Image.new("RGB", (40, 40), (200, 30, 30)).save(tmp_path / "red.png")
    problems = [Problem(id=f"p{i}", question=f"What is {i} + {i}?", answer=str(2 * i),
                        images=["red.png"] if i % 3 == 0 else []) for i in range(n)]
    path = tmp_path / "problems.jsonl"
    write_records(path, [{**p.to_dict()} for p in problems])
    return path


def count_lines(path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_generate_killed_with_sigkill_then_rerun_gives_one_record_per_pair(tiny_model_dir, tiny_model, tmp_path):
    problems = make_problems(tmp_path)
    out = tmp_path / "gens.jsonl"
    cmd = [sys.executable, "-m", "virgo", "generate", "--model", str(tiny_model_dir), "--problems", str(problems),
           "--out", str(out), "--n", "2", "--temperature", "0.9", "--top-p", "0.95", "--max-new-tokens", "48",
           "--batch-size", "2", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while count_lines(out) < 1:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no record appeared"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = count_lines(out)
    assert 1 <= killed_at < 20  # killed mid-run

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["already_done"] == killed_at and summary["generated"] == 20 - killed_at
    gens = read_records(out, Generation)
    keys = [g.key for g in gens]
    assert sorted(keys) == sorted({(f"p{i}", s) for i in range(10) for s in range(2)})  # each pair exactly once

    # The resumed file holds what one uninterrupted run makes: seeds are per (problem, sample).
    cfg = GenerateConfig(n=2, temperature=0.9, top_p=0.95, max_new_tokens=48, batch_size=4)
    run_generate(tiny_model, read_records(problems, Problem), tmp_path / "straight.jsonl", cfg, progress=False)
    straight = {g.key: g.text for g in read_records(tmp_path / "straight.jsonl", Generation)}
    assert {g.key: g.text for g in gens} == straight
    g = gens[0]
    assert g.settings["temperature"] == 0.9 and g.settings["seed"] != 0 and g.model == str(tiny_model_dir)


def test_generate_reports_a_bad_problem_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "q", "answer": "1"}\n{"id": "b", "answer": "2"}\n')
    r = CliRunner().invoke(app, ["generate", "--model", "x", "--problems", str(bad), "--out", str(tmp_path / "o")])
    assert r.exit_code != 0 and "bad.jsonl:2" in r.output and "question" in r.output


def test_serve_refuses_a_public_address_without_a_key():
    r = CliRunner().invoke(app, ["serve", "--model", "x", "--host", "0.0.0.0"], env={"VIRGO_API_KEY": ""})
    assert r.exit_code != 0 and "--api-key" in r.output


def test_chat_command_streams_an_answer(tiny_model_dir, tmp_path):
    Image.new("RGB", (40, 40), (200, 30, 30)).save(tmp_path / "red.png")
    r = CliRunner().invoke(app, ["chat", "--model", str(tiny_model_dir), "--image", str(tmp_path / "red.png"),
                                 "--max-new-tokens", "6", "What colour is it?"])
    assert r.exit_code == 0, r.output
    assert "answer" in r.output and "[6 tokens" in r.output and "finish: length" in r.output


def test_chat_shows_thought_and_answer_apart(tiny_model):
    from test_infer_server import LongThoughtScript

    script = LongThoughtScript(tiny_model[1].tokenizer)
    be = make_backend("transformers", model=tiny_model, logits_processors=[script])
    console = Console(record=True, width=100, color_system="truecolor", force_terminal=True)
    chat(be, "What is 3 + 4?", cfg=GenerateConfig(max_new_tokens=20), console=console)
    text = console.export_text(clear=False)
    assert text.index("thinking") < text.index("answer")
    assert "<|begin_of_thought|>" not in text and "<|end_of_solution|>" not in text
    styled = console.export_text(styles=True)
    assert "\x1b[2m" in styled  # the thought is dimmed
    assert "finish: stop" in text and "14 tokens, 5 thinking" in text


def test_serve_command_answers_over_http(tiny_model_dir):
    import socket

    import httpx
    import openai

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "virgo", "serve", "--model", str(tiny_model_dir), "--port", str(port),
           "--api-key", "k", "--max-new-tokens", "8", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "server did not come up"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0)
        assert [m.id for m in client.models.list().data] == [tiny_model_dir.name]
        r = client.chat.completions.create(model=tiny_model_dir.name, messages=[{"role": "user", "content": "Hi"}])
        assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 8  # the server's default
    finally:
        proc.terminate()
        proc.wait(timeout=30)
