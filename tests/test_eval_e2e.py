"""`virgo eval` end to end (in process, the tiny model) beyond MathVision: a user benchmark from a YAML spec and the
MMMU layout, each re-scored; the caption ablation from a file, from the tiny model and from another server, up to
the report's perception section; manifest sessions across restarts; --max-answer-chars.

Accuracy is meaningless with a random model; the pipeline is what is tested.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from virgo.cli import app
from virgo.records import Generation, Problem, read_records, write_records

SHAPES = [  # (id, question, gold, image or None, level)
    ("s1", "How many sides has the shape in <image 1>?", "3", "img/triangle.png", "easy"),
    ("s2", "How many corners has the shape?", "4", "img/square.png", "hard"),
    ("s3", "What is 2 + 2?", "4", None, "medium"),
    ("s4", "How many sides has this shape?", "3", "img/triangle.png", "easy"),
]
CAPTIONS = {"triangle.png": "a red triangle", "square.png": "a blue square"}


def _eval(*args) -> str:
    res = CliRunner().invoke(app, ["eval", *map(str, args)])
    assert res.exit_code == 0, res.output
    return res.output


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """A user benchmark: a JSONL file with its own field names, images beside it, and a YAML spec."""
    d = tmp_path_factory.mktemp("bench")
    (d / "img").mkdir()
    Image.new("RGB", (28, 28), (200, 30, 30)).save(d / "img" / "triangle.png")
    Image.new("RGB", (28, 28), (30, 30, 200)).save(d / "img" / "square.png")
    rows = [{"qid": i, "problem": q, "gold": a, **({"picture": img} if img else {}), "level": lvl}
            for i, q, a, img, lvl in SHAPES]
    (d / "shapes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {"name": "shapes", "loader": "jsonl", "source": "made by the test", "splits": {"test": "shapes.jsonl"},
            "profile": "default", "breakdowns": ["level"],
            "options": {"fields": {"id": "qid", "question": "problem", "answer": "gold", "images": "picture"}}}
    (d / "shapes.yaml").write_text(yaml.safe_dump(spec))
    return d


def _bench_args(bench, model, out, *extra):
    return ["--model", model, "--benchmark", bench / "shapes.yaml", "--data-dir", bench, "--max-new-tokens", "4",
            "--workers", "0", "--label", "tiny", "--out", out, *extra]


@pytest.fixture(scope="module")
def image_run(bench, tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "images"
    _eval(*_bench_args(bench, tiny_model_dir, out))
    return out


# ----------------------------------------------------------------------------- more layouts, re-scored

def _rescore_is_identical(run):
    before = json.loads((run / "metrics.json").read_text())
    _eval("--rescore", run, "--workers", "0")
    assert json.loads((run / "metrics.json").read_text()) == before


def test_yaml_spec_benchmark_end_to_end(image_run):
    gens, grades = _records(image_run / "generations.jsonl"), _records(image_run / "grades.jsonl")
    assert sorted(g["id"] for g in gens) == ["s1", "s2", "s3", "s4"] and len(grades) == 4
    problems = read_records(image_run / "problems.jsonl", Problem, resolve_images=False)
    assert problems[0].question == "How many sides has the shape in [image 1]?" and problems[0].images
    assert problems[2].images == []
    metrics = json.loads((image_run / "metrics.json").read_text())
    assert metrics["benchmark"] == "shapes" and metrics["n"] == 4
    assert list(metrics["breakdowns"]["level"]) == ["easy", "medium", "hard"]
    assert "### shapes: by level" in (image_run / "report.md").read_text()
    _rescore_is_identical(image_run)


def test_mmmu_layout_end_to_end(shared_data, tiny_model_dir, tmp_path):
    out = tmp_path / "mmmu"
    data = shared_data / "mmmu" / "mmmu_pro_tool_sample"
    _eval("--model", tiny_model_dir, "--benchmark", "mmmu", "--data-dir", data, "--limit", "4", "--seed", "1",
          "--max-new-tokens", "4", "--workers", "0", "--out", out)
    problems = read_records(out / "problems.jsonl", Problem, resolve_images=False)
    assert len(problems) == 4 and all(p.images and p.choices for p in problems)
    assert len(_records(out / "generations.jsonl")) == len(_records(out / "grades.jsonl")) == 4
    run = json.loads((out / "run.json").read_text())
    assert (run["benchmark"], run["split"], run["paper_column"]) == ("mmmu", "validation", "MMMU")
    metrics = json.loads((out / "metrics.json").read_text())
    assert sum(b["n"] for b in metrics["breakdowns"]["subject"].values()) == 4
    assert (out / "plots" / "verdicts.png").is_file()
    _rescore_is_identical(out)


# ----------------------------------------------------------------------------- perception ablation

def _perception_row(md: str) -> list[str]:
    section = md.split("## Perception versus reasoning")[1].split("\n## ")[0]
    line = next(x for x in section.splitlines() if x.startswith("| tiny | shapes |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_captions_from_a_file(bench, image_run, tiny_model_dir, tmp_path):
    caps = tmp_path / "captions.jsonl"
    caps.write_text("".join(json.dumps({"image": name, "caption": c}) + "\n" for name, c in CAPTIONS.items()))
    out = tmp_path / "captioned"
    _eval(*_bench_args(bench, tiny_model_dir, out, "--captions", caps))
    problems = {p.id: p for p in read_records(out / "problems.jsonl", Problem, resolve_images=False)}
    assert all(p.images == [] for p in problems.values())
    assert problems["s1"].question.endswith("[image 1]: a red triangle\n\nHow many sides has the shape in [image 1]?")
    assert "[image 1]: a blue square" in problems["s2"].question and problems["s3"].question == "What is 2 + 2?"
    assert json.loads((out / "run.json").read_text())["ablation"] == {"kind": "caption", "captions": str(caps)}

    res = CliRunner().invoke(app, ["report", str(image_run), str(out), "--out", str(tmp_path / "report")])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "report" / "report.md").read_text()
    img_acc = json.loads((image_run / "metrics.json").read_text())["accuracy"]
    cap_acc = json.loads((out / "metrics.json").read_text())["accuracy"]
    assert _perception_row(md) == ["tiny", "shapes", f"{100 * img_acc:.1f}", f"{100 * cap_acc:.1f}",
                                   f"{100 * (img_acc - cap_acc):,.1f}"]
    assert "(captions)" in md  # the caption run is named apart in every side-by-side table
    perception = json.loads((tmp_path / "report" / "report.json").read_text())["perception"]
    assert perception == [{"label": "tiny", "benchmark": "shapes", "images": img_acc, "captions": cap_acc,
                           "n_images": 4, "n_captions": 4}]


def test_captions_from_the_tiny_model(bench, image_run, tiny_model_dir, tmp_path):
    out = tmp_path / "captioned"
    _eval(*_bench_args(bench, tiny_model_dir, out, "--caption-model", tiny_model_dir, "--caption-max-new-tokens", 4))
    caps = _records(out / "captions.jsonl")
    assert sorted(c["image"].rsplit("/", 1)[1] for c in caps) == ["square.png", "triangle.png"]  # once per image
    gens = read_records(out / "captions.generations.jsonl", Generation, resolve_images=False)
    assert len(gens) == 2 and all(g.completion_tokens <= 4 for g in gens)
    problems = read_records(out / "problems.jsonl", Problem, resolve_images=False)
    assert all(p.images == [] for p in problems) and "[image 1]: " in problems[0].question
    ablation = json.loads((out / "run.json").read_text())["ablation"]
    assert ablation == {"kind": "caption", "caption_model": str(tiny_model_dir), "caption_backend": "transformers",
                        "caption_base_url": None}
    from virgo.eval import render_report

    md = render_report([image_run, out], tmp_path / "report").read_text()
    assert _perception_row(md)[:2] == ["tiny", "shapes"]


class _Captioner(BaseHTTPRequestHandler):
    """A stand-in OpenAI-compatible server that captions every image the same way and keeps the requests."""

    protocol_version = "HTTP/1.1"
    requests: ClassVar[list[dict]] = []

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        out = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                          "choices": [{"index": 0, "finish_reason": "stop",
                                       "message": {"role": "assistant", "content": "a drawing of a shape"}}],
                          "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def test_captions_written_by_another_server(bench, tiny_model_dir, tmp_path):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Captioner)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    out = tmp_path / "captioned"
    try:
        # The evaluated model runs locally; the captions come from the server (--caption-base-url implies openai).
        _eval(*_bench_args(bench, tiny_model_dir, out, "--caption-model", "big-captioner", "--caption-base-url", url))
    finally:
        srv.shutdown()
    reqs = _Captioner.requests
    assert len(reqs) == 2 and {r["model"] for r in reqs} == {"big-captioner"}
    assert all(any(part.get("type") == "image_url" and part["image_url"]["url"].startswith("data:image/png")
                   for part in r["messages"][-1]["content"]) for r in reqs)  # the image itself was sent
    assert {c["caption"] for c in _records(out / "captions.jsonl")} == {"a drawing of a shape"}
    problems = read_records(out / "problems.jsonl", Problem, resolve_images=False)
    assert "[image 1]: a drawing of a shape" in problems[0].question
    run = json.loads((out / "run.json").read_text())
    assert run["backend"] == "transformers"
    assert run["ablation"] == {"kind": "caption", "caption_model": "big-captioner", "caption_backend": "openai",
                               "caption_base_url": url}
    gens = _records(out / "generations.jsonl")
    assert len(gens) == 4 and {g["settings"]["backend"] for g in gens} == {"transformers"}


# ----------------------------------------------------------------------------- manifest sessions, answer length

def test_every_restart_is_a_manifest_session(bench, tiny_model_dir, tmp_path, monkeypatch):
    out = tmp_path / "run"
    args = _bench_args(bench, tiny_model_dir, out)
    _eval(*args)
    first = json.loads((out / "manifest.json").read_text())
    assert [s["kind"] for s in first["sessions"]] == ["eval"] and first["sessions"][0]["git"] == first["git"]

    # The code changed between the start and the resume (another commit): the resume records it.
    from virgo.eval import manifest

    monkeypatch.setattr(manifest, "git_commit", lambda start=None: {"commit": "f" * 40, "dirty": False})
    _eval(*args)
    _eval("--rescore", out, "--workers", "0")
    m = json.loads((out / "manifest.json").read_text())
    assert m["git"] == first["git"] and m["model"] == first["model"]  # the first start is kept as it was
    assert [s["kind"] for s in m["sessions"]] == ["eval", "eval", "rescore"]
    assert m["sessions"][0] == first["sessions"][0]
    assert [s["git"]["commit"] for s in m["sessions"][1:]] == ["f" * 40] * 2
    assert all(s["started"] and s["command"] for s in m["sessions"])
    assert len(_records(out / "generations.jsonl")) == 4  # the resume generated nothing new
    assert f"→ {'f' * 12} (3 sessions)" in (out / "report.md").read_text()


def _long_answer_run(root):
    """A hand-made run whose one answer is right but 14 characters long."""
    root.mkdir()
    write_records(root / "problems.jsonl", [Problem(id="q", question="Expand (x+1)^2.", answer="x^2 + 2x + 1")])
    write_records(root / "generations.jsonl", [Generation(id="q", sample=0, finish_reason="stop",
                                                          text=r"So it is \boxed{x^2 + 2*x + 1}.")])
    (root / "run.json").write_text(json.dumps({"benchmark": "hand", "profile": "default", "breakdowns": []}))
    return root


def test_max_answer_chars_on_rescore(tmp_path):
    run = _long_answer_run(tmp_path / "run")
    _eval("--rescore", run, "--workers", "0")
    assert _records(run / "grades.jsonl")[0]["verdict"] == "correct"
    _eval("--rescore", run, "--workers", "0", "--max-answer-chars", 10)
    grade = _records(run / "grades.jsonl")[0]
    assert grade["verdict"] == "wrong" and "longer than 10 characters" in grade["detail"]
    _eval("--rescore", run, "--workers", "0")  # kept in the run: a later rescore applies it again
    assert _records(run / "grades.jsonl")[0]["verdict"] == "wrong"
    assert json.loads((run / "metrics.json").read_text())["max_answer_chars"] == 10
    assert "| default (answers ≤ 10 chars) |" in (run / "report.md").read_text()


def test_max_answer_chars_on_eval(bench, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    _eval(*_bench_args(bench, tiny_model_dir, out, "--max-answer-chars", 100))
    assert json.loads((out / "run.json").read_text())["max_answer_chars"] == 100
    assert json.loads((out / "metrics.json").read_text())["max_answer_chars"] == 100
