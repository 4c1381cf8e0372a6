"""The commands: `virgo generate` killed with SIGKILL mid-run and rerun gives one record per pair (a real
subprocess), `virgo chat` streams the thought and the answer apart, clear errors for bad input."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import yaml
from click.testing import CliRunner
from PIL import Image
from rich.console import Console

from virgo.cli import app
from virgo.infer import GenerateConfig, make_backend, run_generate
from virgo.infer.budget import CLOSE_TEXT
from virgo.infer.chat import chat
from virgo.infer.config import CHAT_MAX_NEW_TOKENS, CHAT_PROMPT
from virgo.prompts import load_prompt
from virgo.records import Generation, Problem, read_records, write_records
from virgo.thought import END_THOUGHT


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


def _effective(args):
    """The config a command would run with (``--print-config``), parsed."""
    r = CliRunner().invoke(app, [*args, "--print-config"])
    assert r.exit_code == 0, r.output
    return yaml.safe_load(r.output)


def test_paper_decoding_defaults_of_the_config_and_of_generate_and_serve(tmp_path):
    """Greedy, repetition penalty 1.05, up to 8,192 new tokens, the think-boxed prompt (paper, section 4.1)."""
    paper = GenerateConfig()
    assert (paper.greedy, paper.temperature, paper.top_p, paper.repetition_penalty, paper.max_new_tokens,
            paper.prompt, paper.n, paper.thinking_budget, paper.force_wait) == \
        (True, 0.0, 1.0, 1.05, 8192, "think-boxed", 1, None, 0)
    assert load_prompt(paper.prompt).startswith("Please first think deeply about the question, and then put the "
                                                "final answer in \\boxed{}.")
    as_dict = dataclasses.asdict(paper)
    gen = _effective(["generate", "--model", "m", "--problems", str(make_problems(tmp_path, 1)),
                      "--out", str(tmp_path / "g.jsonl")])
    assert gen["generate"] == as_dict
    assert (gen["engine"]["client"]["timeout"], gen["engine"]["client"]["max_retries"]) == (600.0, 5)
    assert _effective(["serve", "--model", "m"])["generate"] == as_dict  # what a request that sets nothing gets
    served = _effective(["serve", "--model", "m", "--force-wait", "2", "--thinking-budget", "512"])["generate"]
    assert (served["force_wait"], served["thinking_budget"]) == (2, 512)  # server-wide defaults


def test_chat_defaults_are_interactive_and_say_so():
    cfg = _effective(["chat", "--model", "m", "Hi"])["generate"]
    assert (cfg["max_new_tokens"], cfg["prompt"]) == (CHAT_MAX_NEW_TOKENS, CHAT_PROMPT) == (2048, "plain")
    # as the paper
    assert (cfg["temperature"], cfg["repetition_penalty"]) == (0.0, GenerateConfig().repetition_penalty)
    text = " ".join(CliRunner().invoke(app, ["chat", "--help"]).output.split())
    assert "on purpose not the paper's" in text and "--max-new-tokens 8192 --prompt think-boxed" in text
    assert "[default: 2048]" in text and "[default: plain]" in text


def test_generate_cli_records_the_thinking_budget(tiny_model_dir, tmp_path):
    """--thinking-budget and --force-wait end to end: settings carry them, records carry what they did."""
    problems = make_problems(tmp_path, n=2)
    out = tmp_path / "g.jsonl"
    r = CliRunner().invoke(app, ["generate", "--model", str(tiny_model_dir), "--problems", str(problems),
                                 "--out", str(out), "--max-new-tokens", "12", "--thinking-budget", "4",
                                 "--force-wait", "1", "--no-progress"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(row["id"] for row in rows) == ["p0", "p1"]
    for row in rows:
        assert (row["settings"]["thinking_budget"], row["settings"]["force_wait"]) == (4, 1)
        # The random model never ends its thought by itself, so nothing is left to extend and the budget closes it.
        assert row["budget_forced"] is True and row["waits"] == 0
        assert CLOSE_TEXT in row["text"] and row["text"].count(END_THOUGHT) == 1


def test_generate_timeout_against_a_silent_server_fails_fast(tmp_path):
    """A server that takes the request and never answers: --timeout bounds each attempt, not a 600 s default."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold():  # accept every connection and keep it open without a byte of answer
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    t0 = time.monotonic()
    try:
        r = CliRunner().invoke(app, [
            "generate", "--model", "m", "--problems", str(make_problems(tmp_path, 1)), "--out",
            str(tmp_path / "g.jsonl"), "--backend", "openai", "--api-key", "k", "--no-progress",
            "--base-url", f"http://127.0.0.1:{listener.getsockname()[1]}/v1", "--timeout", "0.5",
            "--max-retries", "1"])
        elapsed = time.monotonic() - t0
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()
    assert r.exit_code == 1
    assert "error: 1 generation(s) failed" in r.output
    assert "no response within 0.5 s (2 attempt(s)); a long generation may need a larger --timeout" in r.output
    assert len(held) == 2  # the attempt and its one retry
    assert elapsed < 10  # two 0.5 s attempts and a backoff of at most 1 s
    assert not (tmp_path / "g.jsonl").exists() or (tmp_path / "g.jsonl").read_text() == ""


def test_replicas_are_repeatable_and_belong_to_the_openai_backend(tmp_path):
    problems = str(make_problems(tmp_path, 1))
    base = ["generate", "--model", "m", "--problems", problems, "--out", str(tmp_path / "g.jsonl")]
    urls = ["http://node1:8000/v1", "http://node2:8000/v1"]
    cfg = _effective([*base, "--backend", "openai", "--base-url", "http://node0:8000/v1",
                      *(a for u in urls for a in ("--replicas", u))])
    assert cfg["engine"]["client"]["replicas"] == urls
    r = CliRunner().invoke(app, [*base, "--replicas", urls[0]])
    assert r.exit_code != 0 and "--replicas are endpoints of the openai backend" in r.output


def test_without_sampling_extras_a_setting_beyond_openai_fails_in_one_line_before_any_request(tmp_path):
    """The paper's repetition penalty cannot travel in OpenAI's own fields: generate and chat say so and send
    nothing (the URL has no server behind it)."""
    url = "http://127.0.0.1:9/v1"
    gen = CliRunner().invoke(app, ["generate", "--model", "m", "--problems", str(make_problems(tmp_path, 1)),
                                   "--out", str(tmp_path / "g.jsonl"), "--backend", "openai", "--base-url", url,
                                   "--no-sampling-extras", "--no-progress"])
    chat = CliRunner().invoke(app, ["chat", "--model", "m", "--base-url", url, "--no-sampling-extras", "Hi"])
    for r in (gen, chat):
        assert r.exit_code != 0 and "Traceback" not in r.output, r.output
        assert "repetition_penalty 1.05: not an OpenAI API field" in r.output
    ok = CliRunner().invoke(app, ["chat", "--model", "m", "--base-url", url, "--no-sampling-extras",
                                  "--repetition-penalty", "1", "--print-config", "Hi"])
    assert ok.exit_code == 0 and "sampling_extras: false" in ok.output
