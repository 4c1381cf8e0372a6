"""The benchmark registry: declarative YAML specs, named loaders, selection.

A benchmark is a YAML file (packaged ones live in ``templates/benchmarks/``; a user passes a path to
their own) naming a loader for its official file layout, the files per split, the prompt prefix, the
grading profile, the breakdowns reported and loader options::

    name: mathvision
    loader: mathvision              # a loader module in virgo.eval.benchmarks
    source: https://github.com/mathllm/MATH-V (data/*.jsonl + images/)
    splits: {test: data/test.jsonl, testmini: data/testmini.jsonl}
    default_split: test
    prompt: think-boxed             # templates/prompts/<name>.txt
    profile: mathvision             # virgo.grade profile
    breakdowns: [level, subject]    # Problem.meta keys reported separately
    paper_column: MathVision        # the column of the paper's Table 2 it fills
    options: {}                     # loader options (defaults; callers override)
    metrics: wemath                 # optional: the benchmark's official metrics (virgo.eval.official)

``get_benchmark(name_or_path).load(data_dir, split)`` returns ``Problem`` records. The spec and loader types live in
``virgo.eval.benchmarks.base``, which loaders import; this module imports no loader.
"""

from __future__ import annotations

import random
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from virgo.eval.benchmarks.base import (
    SPEC_KEYS,
    BenchmarkSpec,
    LoadContext,
    Loaded,
    loader_module,
    loader_names,
    loader_options,
    metrics_hook,
)
from virgo.records import Problem

__all__ = ["SPEC_KEYS", "BenchmarkSpec", "LoadContext", "Loaded", "filter_problems", "get_benchmark",
           "list_benchmarks", "load_spec", "loader_module", "loader_names", "loader_options", "parse_where", "select",
           "spec_from_dict"]


# ----------------------------------------------------------------------------- specs

def _spec_dir() -> Path:
    return Path(str(resources.files("virgo") / "templates" / "benchmarks"))


def list_benchmarks() -> list[str]:
    return sorted(p.stem for p in _spec_dir().glob("*.yaml"))


def spec_from_dict(data: dict[str, Any], *, path: str | None = None) -> BenchmarkSpec:
    where = path or "<spec>"
    if not isinstance(data, dict):
        raise ValueError(f"{where}: a benchmark spec must be a YAML mapping")  # noqa: TRY004 - a bad file, not a bug
    unknown = set(data) - SPEC_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(SPEC_KEYS)}")
    for key in ("name", "loader", "splits"):
        if key not in data:
            raise ValueError(f"{where}: missing required key {key!r}")
    if not isinstance(data["splits"], dict) or not data["splits"]:
        raise ValueError(f"{where}: 'splits' must map split names to files")
    if data["loader"] not in loader_names():
        raise ValueError(f"{where}: unknown loader {data['loader']!r}; known: {', '.join(loader_names())}")
    kwargs = dict(data)
    kwargs.setdefault("default_split", next(iter(data["splits"])))
    kwargs["splits"] = {str(k): str(v) for k, v in data["splits"].items()}
    kwargs["breakdowns"] = list(data.get("breakdowns") or [])
    kwargs["options"] = dict(data.get("options") or {})
    spec = BenchmarkSpec(**kwargs, path=path)
    spec.split_path(spec.default_split)
    spec.resolve_options()  # unknown options fail here, at spec load, not mid-run
    metrics_hook(spec.metrics)  # and an unknown metrics hook
    return spec


def load_spec(path: str | Path) -> BenchmarkSpec:
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    return spec_from_dict(data, path=str(path))


def get_benchmark(name_or_path: str | Path) -> BenchmarkSpec:
    """A packaged benchmark by name (``mathvision``) or a user's spec by path to a YAML file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise FileNotFoundError(f"benchmark spec {p} not found")
        return load_spec(p)
    f = _spec_dir() / f"{name_or_path}.yaml"
    if not f.is_file():
        raise ValueError(f"unknown benchmark {name_or_path!r}; known: {', '.join(list_benchmarks())} "
                         "(or a path to a YAML spec)")
    return load_spec(f)


# ----------------------------------------------------------------------------- selection

def parse_where(items: list[str] | None) -> dict[str, set[str]]:
    """``["subject=maths", "language=en,zh"]`` -> {"subject": {"maths"}, "language": {"en", "zh"}}."""
    out: dict[str, set[str]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--where expects key=value, got {item!r}")
        out.setdefault(key.strip(), set()).update(v.strip() for v in value.split(","))
    return out


def filter_problems(problems: list[Problem], where: dict[str, set[str]]) -> list[Problem]:
    """Keep problems whose ``meta[key]`` (as text) is one of the given values, for every key."""
    if not where:
        return problems
    return [p for p in problems if all(str(p.meta.get(k)) in vals for k, vals in where.items())]


def select(problems: list[Problem], limit: int | None, seed: int = 0) -> list[Problem]:
    """A seeded random subset of ``limit`` problems, kept in file order (all of them if limit is None)."""
    if limit is None or limit >= len(problems):
        return list(problems)
    if limit < 0:
        raise ValueError("limit must be >= 0")
    keep = set(random.Random(seed).sample(range(len(problems)), limit))
    return [p for i, p in enumerate(problems) if i in keep]
