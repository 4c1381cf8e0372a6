"""What the registry and the loaders share: a benchmark spec, the context a loader gets, and finding loaders by name.

Loaders (``virgo.eval.benchmarks.<name>``) import this module; this module imports no loader at module level: a
loader is found by name (``importlib``) when a spec is loaded, so the registry and the loaders never import each
other. A loader module exposes ``NAME`` (its ``loader:`` key, the module name), ``OPTIONS`` (accepted loader options
with defaults) and ``load(ctx: LoadContext) -> list[Problem]``.

A spec may also name a ``metrics`` hook, ``module`` or ``module:function`` (default function ``official_metrics``,
module relative to ``virgo.eval.benchmarks``): the benchmark's own official metric definitions, computed by
`virgo.eval.official` and shown by `virgo report` without the report knowing the benchmark.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from virgo.records import Problem

PACKAGE = "virgo.eval.benchmarks"
NOT_LOADERS = {"base"}
SPEC_KEYS = {"name", "loader", "title", "source", "splits", "default_split", "prompt", "profile", "breakdowns",
             "paper_column", "options", "description", "metrics"}


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
    metrics: str | None = None  # the official-metrics hook ("wemath" or "wemath:official_metrics")
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
        problems = loader_module(self.loader).load(ctx)
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


# ----------------------------------------------------------------------------- loaders, found by name

@functools.cache
def loader_names() -> list[str]:
    """Every loader module in the package (a module with ``NAME`` and ``load``), without importing them all."""
    import virgo.eval.benchmarks as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)
                  if not m.ispkg and m.name not in NOT_LOADERS and not m.name.startswith("_"))


def loader_module(name: str) -> ModuleType:
    if name not in loader_names():
        raise ValueError(f"unknown loader {name!r}; known: {', '.join(loader_names())}")
    module = importlib.import_module(f"{PACKAGE}.{name}")
    if getattr(module, "NAME", None) != name or not callable(getattr(module, "load", None)):
        raise ValueError(f"{PACKAGE}.{name} is not a loader (needs NAME = {name!r} and load(ctx))")
    return module


def loader_options(loader: str) -> dict[str, Any]:
    """The options a loader accepts, with their defaults."""
    return dict(loader_module(loader).OPTIONS)


def metrics_hook(ref: str | None) -> Callable[..., dict[str, Any]] | None:
    """The official-metrics function a spec names (``module`` or ``module:function``), or None."""
    if not ref:
        return None
    module, _, func = ref.partition(":")
    name = module if "." in module else f"{PACKAGE}.{module}"
    try:
        fn = getattr(importlib.import_module(name), func or "official_metrics")
    except (ImportError, AttributeError) as e:
        raise ValueError(f"metrics hook {ref!r} not found ({e})") from None
    if not callable(fn):
        raise ValueError(f"metrics hook {ref!r} is not a function")  # noqa: TRY004 - a bad spec value
    return fn
