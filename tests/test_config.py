"""The config system: every stage's flags, YAML keys and checks come from its dataclass (virgo.config)."""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from virgo.cli import COMMANDS, app
from virgo.config import ConfigDeprecationWarning, ConfigError, dump_yaml, load, opt, section
from virgo.config.cli import StageCommand, command, flag, param_name
from virgo.config.tree import leaves, preferred_name


@dataclasses.dataclass
class Inner:
    temperature: float = opt(0.0, ge=0, help="Sampling temperature.")
    seed: int = opt(0, help="Inner seed.")
    tags: list[str] = opt([], help="Tags.")


@dataclasses.dataclass
class Outer:
    model: str = opt(help="The model.", short="-m")
    seed: int = opt(1, help="Outer seed.")
    budget: int | None = opt(None, ge=0, deprecated=["old_budget"], help="A budget.")
    mode: str = opt("a", choices=["a", "b"], help="A mode.")
    loud: bool = opt(False, help="A switch.")
    key: str | None = opt(None, secret=True, help="A secret.")
    inner: Inner = section(Inner, help="Inner part", factory=lambda: Inner(temperature=0.5))


def _run(args, cls=Outer):
    seen = {}
    cmd = command("t", cls, lambda cfg: seen.setdefault("cfg", cfg), help="Test command.")
    result = CliRunner().invoke(cmd, args)
    return result, seen.get("cfg")


def test_precedence_defaults_yaml_flags_overrides(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("model: from-yaml\nseed: 5\ninner:\n  temperature: 0.9\n  seed: 3\nbudget: 10\n")
    r, cfg = _run(["--config", str(cfg_file), "--seed", "6", "inner.seed=4", "budget=null"])
    assert r.exit_code == 0, r.output
    assert (cfg.model, cfg.seed, cfg.inner.temperature, cfg.inner.seed, cfg.budget) == ("from-yaml", 6, 0.9, 4, None)
    r, cfg = _run(["-m", "x"])
    assert cfg.inner.temperature == 0.5  # the section's factory is the stage's default
    assert cfg.seed == 1 and cfg.inner.seed == 0


def test_flat_names_for_unique_section_fields_and_dotted_for_ambiguous_ones():
    names = {leaf.dotted: preferred_name(Outer, leaf) for leaf in leaves(Outer)}
    assert names["inner.temperature"] == "temperature"
    assert names["inner.seed"] == "inner.seed" and names["seed"] == "seed"
    r, cfg = _run(["-m", "x", "--temperature", "0.25", "--inner.seed", "9", "--tags", "a", "--tags", "b"])
    assert r.exit_code == 0, r.output
    assert (cfg.inner.temperature, cfg.inner.seed, cfg.inner.tags) == (0.25, 9, ["a", "b"])


@pytest.mark.parametrize("args, message", [
    (["-m", "x", "--temprature", "1"], "Did you mean '--temperature'"),
    (["-m", "x", "temprature=1"], "unknown key 'temprature'; did you mean 'temperature'"),
    (["-m", "x", "--temperature", "nan"], "finite"),
    (["-m", "x", "--temperature", "-1"], ">= 0"),
    (["-m", "x", "--mode", "c"], "must be one of a, b"),
    ([], "missing --model"),
    (["-m", "x", "seed=abc"], "must be an integer"),
])
def test_bad_input_is_one_clear_error(args, message):
    r, cfg = _run(args)
    assert r.exit_code == 2 and cfg is None
    assert message in r.output


def test_unknown_yaml_key_names_file_and_suggestion(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model: x\ntemperture: 1\n")
    r, _ = _run(["--config", str(f)])
    assert r.exit_code == 2
    assert str(f) in r.output and "unknown key 'temperture'; did you mean 'temperature'" in r.output


def test_deprecated_names_still_work_and_warn(tmp_path):
    r, cfg = _run(["-m", "x", "--old-budget", "7"])
    assert r.exit_code == 0 and cfg.budget == 7
    assert "deprecated" in r.output and "--budget" in r.output
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = load(Outer, cli={"model": "x"}, overrides=["old_budget=3"])
    assert cfg.budget == 3 and any(issubclass(w.category, ConfigDeprecationWarning) for w in caught)


def test_print_config_round_trips_and_hides_secrets(tmp_path):
    r, cfg = _run(["-m", "x", "--temperature", "0.7", "--loud", "--key", "s3cret", "--print-config"])
    assert r.exit_code == 0 and cfg is None
    assert "s3cret" not in r.output
    data = yaml.safe_load(r.output)
    assert data["inner"]["temperature"] == 0.7 and data["loud"] is True
    f = tmp_path / "p.yaml"
    f.write_text(r.output)
    again = load(Outer, config=f)
    assert again.inner.temperature == 0.7 and again.loud is True and again.model == "x"


def test_nan_is_refused_everywhere():
    with pytest.raises(ConfigError, match="finite"):
        load(Outer, cli={"model": "x"}, overrides=["temperature=.nan"])
    with pytest.raises(ConfigError, match="finite"):
        load(Outer, cli={"model": "x", "inner.temperature": math.inf})


# --- every command of the real CLI -----------------------------------------------------------------------------


def _commands(name):
    cmd = app.get_command(click.Context(app), name)
    assert cmd is not None, f"virgo {name} is listed but does not load"
    if isinstance(cmd, click.Group):
        return [(f"{name} {s.name}", s) for s in cmd.commands.values()]
    return [(name, cmd)]


@pytest.mark.parametrize("command_name", list(COMMANDS))
def test_every_config_field_is_a_flag_with_help_and_a_yaml_key(command_name):
    for name, cmd in _commands(command_name):
        assert isinstance(cmd, StageCommand), f"virgo {name} is not generated from a config dataclass"
        params = {p.name: p for p in cmd.params}
        assert "config" in params and "print_config" in params
        for leaf in leaves(cmd.cls):
            assert leaf.help, f"virgo {name}: {leaf.dotted} has no help text"
            if not leaf.meta.get("cli", True) or leaf.meta.get("positional"):
                continue
            opt_ = params.get(param_name(leaf))
            assert opt_ is not None, f"virgo {name}: {leaf.dotted} is not a flag"
            assert flag(preferred_name(cmd.cls, leaf)) in opt_.opts, (name, leaf.dotted, opt_.opts)
        text = CliRunner().invoke(app, [*name.split(), "--help"]).output
        assert "--print-config" in text and "--config" in text, text


def test_every_packaged_recipe_loads():
    from virgo.train.config import available_recipes, load_config

    names = available_recipes()
    assert {"tiny-cpu", "qwen2vl-7b-virgo", "qwen2vl-72b-virgo"} <= set(names)
    for name in names:
        cfg = load_config(name)
        assert cfg.learning_rate > 0, name


def test_version_and_fast_help():
    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.startswith("virgo ")


def test_dump_yaml_of_a_nested_config_is_loadable(tmp_path):
    cfg = load(Outer, cli={"model": "m", "inner.tags": ["x"]})
    f = Path(tmp_path / "d.yaml")
    f.write_text(dump_yaml(cfg))
    assert load(Outer, config=f) == cfg


def test_renamed_flags_of_real_commands_still_work_with_a_warning(tmp_path):
    problems, gens = tmp_path / "p.jsonl", tmp_path / "g.jsonl"
    problems.write_text('{"id": "1", "question": "1+1?", "answer": "2"}\n')
    gens.write_text('{"id": "1", "sample": 0, "text": "\\\\boxed{2}", "finish_reason": "stop"}\n')
    base = ["grade", "-p", str(problems), "-g", str(gens), "-o", str(tmp_path / "out.jsonl"), "--print-config"]
    r = CliRunner().invoke(app, [*base, "--timeout", "3", "--benchmark", "mmmu"])
    assert r.exit_code == 0, r.output
    assert "--timeout is deprecated" in r.output and "--benchmark is deprecated" in r.output
    data = yaml.safe_load(r.output[r.output.index("problems:"):])
    assert data["grade"]["grade_timeout"] == 3.0 and data["grade"]["profile"] == "mmmu"
