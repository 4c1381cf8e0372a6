"""`virgo eval` / `virgo report` are generated from EvalConfig / ReportConfig: every flag of the old hand-written eval
command still works, --thinking-budget and --force-wait come from GenerateConfig, a list of budgets is a sweep, and
errors are one line."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from virgo.cli import app
from virgo.eval.cli import sweep_args

OLD_FLAGS = [  # every option of the typer command this replaced, with a value
    ("--model", "m"), ("--benchmark", "mathvision"), ("--data-dir", "/data/mv"), ("--split", "testmini"),
    ("--limit", "5"), ("--seed", "7"), ("--out", "/runs/x"), ("--profile", "mathvision"),
    ("--max-answer-chars", "100"), ("--where", "level=1"), ("--option", "a=1"), ("--label", "L"),
    ("--backend", "openai"), ("--base-url", "http://h/v1"), ("--api-key", "sk-secret"), ("--concurrency", "3"),
    ("--max-new-tokens", "64"), ("--temperature", "0.5"), ("--top-p", "0.9"), ("--repetition-penalty", "1.1"),
    ("--n", "4"), ("--prompt", "plain"), ("--system", "S"), ("--chat-template", "qwen2vl"),
    ("--thinking-budget", "128"), ("--batch-size", "2"), ("--dtype", "bfloat16"), ("--caption-model", "cm"),
    ("--caption-backend", "openai"), ("--caption-max-new-tokens", "32"), ("--caption-base-url", "http://c/v1"),
    ("--workers", "0"), ("--judge-url", "http://j/v1"), ("--judge-model", "jm"),
]


def _config(*args) -> dict:
    res = CliRunner().invoke(app, ["eval", *args, "--print-config"])
    assert res.exit_code == 0, res.output
    return yaml.safe_load(res.output)


def test_every_old_flag_still_works():
    cfg = _config(*[x for pair in OLD_FLAGS for x in pair], "--force-wait", "2")
    g, e, gr, c = cfg["generate"], cfg["engine"], cfg["grade"], cfg["caption"]
    assert (cfg["model"], cfg["benchmark"], cfg["data_dir"], cfg["split"], cfg["limit"]) == (
        "m", "mathvision", "/data/mv", "testmini", 5)
    assert (cfg["out"], cfg["where"], cfg["option"], cfg["label"]) == ("/runs/x", ["level=1"], ["a=1"], "L")
    assert (g["seed"], g["max_new_tokens"], g["temperature"], g["top_p"], g["repetition_penalty"], g["n"]) == (
        7, 64, 0.5, 0.9, 1.1, 4)
    assert (g["prompt"], g["system"], g["thinking_budget"], g["force_wait"], g["batch_size"], g["dtype"]) == (
        "plain", "S", 128, 2, 2, "bfloat16")
    assert (e["backend"], e["base_url"]) == ("openai", "http://h/v1")
    assert (gr["profile"], gr["max_answer_chars"], gr["workers"], gr["judge_url"], gr["judge_model"]) == (
        "mathvision", 100, 0, "http://j/v1", "jm")
    assert (c["caption_model"], c["caption_backend"], c["caption_max_new_tokens"], c["caption_base_url"]) == (
        "cm", "openai", 32, "http://c/v1")
    assert "sk-secret" not in yaml.safe_dump(cfg)  # a secret is never printed


def test_the_prompt_defaults_to_the_benchmarks():
    assert _config()["generate"]["prompt"] == "benchmark"


def test_a_list_of_budgets_is_a_sweep():
    assert sweep_args(["--thinking-budget", "256,512,1024", "--force-wait", "1"]) == [
        "--budgets", "256", "--budgets", "512", "--budgets", "1024", "--force-wait", "1"]
    assert sweep_args(["--thinking-budget=8,16"]) == ["--budgets", "8", "--budgets", "16"]
    assert sweep_args(["thinking_budget=8,16"]) == ["--budgets", "8", "--budgets", "16"]
    assert sweep_args(["--thinking-budget", "64"]) == ["--thinking-budget", "64"]  # one value: one cap
    cfg = _config("--thinking-budget", "256,512")
    assert cfg["budgets"] == [256, 512] and cfg["generate"]["thinking_budget"] is None


def test_yaml_round_trip(tmp_path):
    first = _config("--model", "m", "--budgets", "8", "--budgets", "16", "--k", "1", "--k", "4")
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(first))
    assert _config("--config", str(path)) == first


def test_errors_are_one_line(tmp_path):
    res = CliRunner().invoke(app, ["eval", "--benchmark", "mathvision"])
    assert res.exit_code == 2 and "missing --model, --data-dir, --out" in res.output
    res = CliRunner().invoke(app, ["eval", "--captions", "c.jsonl", "--caption-model", "m"])
    assert res.exit_code == 2 and "not both" in res.output
    res = CliRunner().invoke(app, ["eval", "--rescore", str(tmp_path), "--budgets", "8"])
    assert res.exit_code == 2 and "--rescore" in res.output
    res = CliRunner().invoke(app, ["eval", "--rescore", str(tmp_path)])
    assert res.exit_code == 2 and "not a `virgo eval` run folder" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 2 and "run.json not found" in res.output


def test_list_benchmarks():
    res = CliRunner().invoke(app, ["eval", "--list"])
    assert res.exit_code == 0
    names = [line.split()[0] for line in res.output.splitlines()]
    for name in ("mathvision", "mathverse", "olympiadbench", "mmmu", "mathvista", "wemath", "logicvista", "dynamath",
                 "mmmu_pro"):
        assert name in names
