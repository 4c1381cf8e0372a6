"""The `virgo` CLI: every stage is a subcommand whose --help explains it, and --help stays fast (no torch import)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from virgo.cli import app

COMMANDS = ["data", "train", "rl", "generate", "chat", "serve", "distill", "grade", "eval", "report", "view", "demo",
            "make-tiny-model"]
DATA_COMMANDS = ["convert", "stats", "select", "validate", "decontaminate"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_stage_has_help(cmd):
    result = CliRunner().invoke(app, [cmd, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and len(result.output.split()) > 20


@pytest.mark.parametrize("cmd", DATA_COMMANDS)
def test_data_subcommands_have_help(cmd):
    result = CliRunner().invoke(app, ["data", cmd, "--help"])
    assert result.exit_code == 0, result.output


def test_help_does_not_import_torch():
    code = "import sys; from virgo.cli import app; assert 'torch' not in sys.modules, 'torch imported by --help'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_make_tiny_model_cli(tmp_path):
    result = CliRunner().invoke(app, ["make-tiny-model", "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m" / "model.safetensors").exists()


def _virgo(*args, **kw):
    return subprocess.run([sys.executable, "-m", "virgo", *map(str, args)], capture_output=True, text=True,
                          timeout=300, check=False, **kw)


def test_version():
    proc = _virgo("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"virgo {__import__('virgo').__version__}"


def test_a_missing_model_directory_is_one_line(tmp_path):
    problems = tmp_path / "p.jsonl"
    problems.write_text('{"id": "1", "question": "1+1?", "answer": "2"}\n')
    proc = _virgo("generate", "--model", "/nonexistent", "--problems", problems, "--out", tmp_path / "g.jsonl")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: /nonexistent: no such model directory, and not a hub id"
    assert "Traceback" not in proc.stdout + proc.stderr


def test_grade_and_stats_fail_when_no_record_is_usable(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\nnot json\n')
    problems = tmp_path / "p.jsonl"
    problems.write_text('{"id": "1", "question": "1+1?", "answer": "2"}\n')
    proc = _virgo("grade", "--problems", problems, "--generations", bad, "--out", tmp_path / "g.jsonl",
                  "--no-progress")
    assert proc.returncode == 2 and "no usable generations (2 bad record(s))" in proc.stderr
    proc = _virgo("data", "stats", bad, "--no-progress")
    assert proc.returncode == 2 and "no usable records (2 bad)" in proc.stderr
    good = tmp_path / "good.jsonl"  # one good record among bad ones: the good one is used, the bad reported
    good.write_text('{"id": "a", "question": "q", "thought": "t", "solution": "s"}\nnot json\n')
    proc = _virgo("data", "stats", good, "--json", "--no-progress")
    assert proc.returncode == 0 and '"bad_records": 1' in proc.stdout
