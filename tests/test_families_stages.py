"""Serve, distill and eval on a tiny model of each family (train, LoRA, packing and generate are in
tests/test_families.py and tests/test_train_packing.py): the same commands as for Qwen2-VL, with a text question
and one with an image, real uvicorn on localhost, real files."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image
from test_infer_server import running as _serving  # uvicorn on a free 127.0.0.1 port, in a thread

from virgo.modeling.family import families
from virgo.records import Generation, Problem, read_records, write_records

FAMILIES = [f.name for f in families()]
N = 2  # distillation samples per problem
MAX_NEW = 12


@pytest.fixture(scope="module", params=FAMILIES)
def family_dir(request, tmp_path_factory) -> tuple[str, Path]:
    import torch

    from virgo.modeling.tiny import make_tiny_model

    torch.set_num_threads(1)
    return request.param, make_tiny_model(tmp_path_factory.mktemp(request.param) / "model", family=request.param)


@pytest.fixture(scope="module")
def problems_file(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("problems")
    Image.new("RGB", (32, 32), (200, 30, 30)).save(d / "red.png")
    write_records(d / "problems.jsonl", [Problem("t0", "What is 1 + 1?", "2"), Problem("t1", "What is 2 + 3?", "5"),
                                         Problem("v0", "How many squares are there?", "1", images=["red.png"])])
    return d / "problems.jsonl"


def _data_url(im: Image.Image) -> str:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_serve(family_dir):
    """`virgo serve`'s app loads the model by its directory, detects the family, and answers text and image
    requests through the OpenAI client exactly as the local backend generates."""
    import openai

    from virgo.infer import GenerateConfig, GenRequest, make_backend
    from virgo.infer.server import ServeConfig, create_app
    from virgo.modeling.family import detect
    from virgo.prompts import build_messages

    family, model_dir = family_dir
    red = Image.new("RGB", (32, 32), (200, 30, 30))
    cfg = ServeConfig(model=str(model_dir), served_model_name=["tiny"],
                      generate=GenerateConfig(max_new_tokens=MAX_NEW))
    app = create_app(cfg)
    local = make_backend("transformers", str(model_dir))
    with _serving(app) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)
        assert [m.id for m in client.models.list().data] == ["tiny"]
        text = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "What is 1 + 1?"}],
                                              max_tokens=MAX_NEW)
        parts = [{"type": "image_url", "image_url": {"url": _data_url(red)}}, {"type": "text", "text": "What colour?"}]
        image = client.chat.completions.create(model="tiny", max_tokens=MAX_NEW,
                                               messages=[{"role": "user", "content": parts}])
    assert detect(local.model).name == family
    want = local.generate([GenRequest(build_messages("What is 1 + 1?", 0))], GenerateConfig(max_new_tokens=MAX_NEW))
    assert text.choices[0].model_extra["virgo"]["text"] == want[0].text
    assert text.usage.completion_tokens == want[0].completion_tokens <= MAX_NEW
    # the image costs its image tokens in the prompt: more than the text around it
    assert image.usage.prompt_tokens > text.usage.prompt_tokens
    assert image.choices[0].finish_reason in ("stop", "length")


def test_distill(family_dir, problems_file, tmp_path):
    """`virgo distill` with the family's model as a local teacher: every (problem, sample) rolled out, graded."""
    from click.testing import CliRunner

    from virgo.cli import app

    _, model_dir = family_dir
    out = tmp_path / "rollouts.jsonl"
    res = CliRunner().invoke(app, ["distill", "--problems", str(problems_file), "--teacher", str(model_dir), "--n",
                                   str(N), "--max-new-tokens", str(MAX_NEW), "--temperature", "1.0", "--seed", "1",
                                   "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    gens = read_records(out, Generation)
    assert sorted(g.key for g in gens) == sorted((p, s) for p in ("t0", "t1", "v0") for s in range(N))
    assert all(0 < g.completion_tokens <= MAX_NEW for g in gens)
    image_prompt = {g.prompt_tokens for g in gens if g.id == "v0"}
    assert min(image_prompt) > max(g.prompt_tokens for g in gens if g.id == "t0")  # the image reached the model
    stats = json.loads(next(tmp_path.glob("*stats*.json")).read_text())
    assert stats["rollout"]["records"] == 3 * N and stats["grading"]["teacher"]["n"] == 3 * N


def test_eval(family_dir, problems_file, tmp_path):
    """`virgo.eval.evaluate` on the family's model: a run folder with a generation and a grade per problem."""
    from virgo.eval import evaluate
    from virgo.infer import GenerateConfig
    from virgo.modeling.family import get_family

    family, model_dir = family_dir
    problems = read_records(problems_file, Problem)
    metrics = evaluate(str(model_dir), problems, tmp_path / "run", GenerateConfig(max_new_tokens=MAX_NEW),
                       "default", benchmark="tiny", workers=0, progress=False, report=False)
    assert metrics["n"] == 3 and metrics["n_missing"] == 0 and 0.0 <= metrics["accuracy"] <= 1.0
    gens = read_records(tmp_path / "run" / "generations.jsonl", Generation)
    assert {g.id for g in gens} == {"t0", "t1", "v0"}
    assert all(g.finish_reason in ("stop", "length") and g.completion_tokens <= MAX_NEW for g in gens)
    grades = [json.loads(line) for line in (tmp_path / "run" / "grades.jsonl").read_text().splitlines()]
    assert len(grades) == 3
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["template"]["chat_template"] == get_family(family).chat_template  # auto -> the family's own
