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

``get_benchmark(name_or_path).load(data_dir, split)`` returns ``Problem`` records.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from virgo.records import Problem

SPEC_KEYS = {"name", "loader", "title", "source", "splits", "default_split", "prompt", "profile", "breakdowns",
             "paper_column", "options", "description"}


@dataclasses.dataclass
class LoadContext:
    """What a loader gets: the spec, where the data is, the split, resolved options; it records files read."""

    spec: BenchmarkSpec
    data_dir: Path
    split: str
    options: dict[str, Any]
    files: list[Path] = dataclasses.field(default_factory=list)  # data files read (hashed into the manifest)

    def locate(self, relpath: str | None = None, *, what: str | None = None) -> Path:
        from virgo.eval.sources import locate

        rel = relpath if relpath is not None else self.spec.split_path(self.split)
        path = locate(self.data_dir, rel, benchmark=self.spec.name, source=self.spec.source,
                      what=what or f"{self.split} split file {rel!r}")
        self.files.append(path)
        return path


Loader = Callable[[LoadContext], list[Problem]]


@dataclasses.dataclass
class Loaded:
    problems: list[Problem]
    files: list[Path]


@dataclasses.dataclass
class BenchmarkSpec:
    name: str
    loader: str
    splits: dict[str, str]
    default_split: str
    prompt: str = "think-boxed"
    profile: str = "default"
    breakdowns: list[str] = dataclasses.field(default_factory=list)
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    title: str = ""
    description: str = ""
    source: str = ""
    paper_column: str | None = None
    path: str | None = None  # the YAML file this spec came from

    def split_path(self, split: str) -> str:
        if split not in self.splits:
            raise ValueError(f"{self.name}: unknown split {split!r}; known: {', '.join(self.splits)}")
        return self.splits[split]

    def resolve_options(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Spec options < caller overrides; unknown option names are an error naming the known ones."""
        known = loader_options(self.loader)
        merged = dict(known)
        for source_name, opts in (("spec " + (self.path or self.name), self.options), ("override", overrides or {})):
            for k, v in opts.items():
                if k not in known:
                    raise ValueError(f"{self.name}: unknown loader option {k!r} ({source_name}); "
                                     f"known: {', '.join(sorted(known)) or '(none)'}")
                merged[k] = v
        return merged

    def load_full(self, data_dir: str | Path, split: str | None = None, **options: Any) -> Loaded:
        split = split or self.default_split
        self.split_path(split)  # validates the split name
        ctx = LoadContext(self, Path(data_dir), split, self.resolve_options(options))
        problems = _loader_module(self.loader).load(ctx)
        _check_unique(self.name, problems)
        for p in problems:
            p.meta.setdefault("benchmark", self.name)
            p.meta.setdefault("split", split)
        return Loaded(problems, list(dict.fromkeys(ctx.files)))

    def load(self, data_dir: str | Path, split: str | None = None, **options: Any) -> list[Problem]:
        """The benchmark's problems in file order (with default exclusions applied)."""
        return self.load_full(data_dir, split, **options).problems

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("path")
        return d


def _check_unique(name: str, problems: list[Problem]) -> None:
    seen: set[str] = set()
    for p in problems:
        if p.id in seen:
            raise ValueError(f"{name}: duplicate problem id {p.id!r}")
        seen.add(p.id)


# ----------------------------------------------------------------------------- loaders

@functools.cache
def _loader_modules() -> dict[str, ModuleType]:
    # Imported on first use so ``import virgo.eval`` stays cheap.
    from virgo.eval.benchmarks import jsonl, mathverse, mathvision, mmmu, olympiadbench

    return {m.NAME: m for m in (mathvision, mathverse, olympiadbench, mmmu, jsonl)}


def loader_names() -> list[str]:
    return sorted(_loader_modules())


def _loader_module(name: str) -> ModuleType:
    mods = _loader_modules()
    if name not in mods:
        raise ValueError(f"unknown loader {name!r}; known: {', '.join(sorted(mods))}")
    return mods[name]


def loader_options(loader: str) -> dict[str, Any]:
    """The options a loader accepts, with their defaults."""
    return dict(_loader_module(loader).OPTIONS)


# ----------------------------------------------------------------------------- specs

def _spec_dir() -> Path:
    return Path(str(resources.files("virgo") / "templates" / "benchmarks"))


def list_benchmarks() -> list[str]:
    return sorted(p.stem for p in _spec_dir().glob("*.yaml"))


def spec_from_dict(data: dict[str, Any], *, path: str | None = None) -> BenchmarkSpec:
    where = path or "<spec>"
    if not isinstance(data, dict):
        raise ValueError(f"{where}: a benchmark spec must be a YAML mapping")
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
