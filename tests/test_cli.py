"""The `virgo` CLI: every stage is a subcommand whose --help explains it, and --help stays fast (no torch import)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from virgo.cli import app

COMMANDS = ["data", "train", "generate", "chat", "serve", "distill", "grade", "eval", "report", "demo",
            "make-tiny-model"]
DATA_COMMANDS = ["convert", "stats", "select", "validate"]


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
