"""What `virgo view` reads: one run's problems, generations and grades, from any of the layouts runs come in.

- a `virgo eval` run folder (``run.json``, ``problems.jsonl``, ``generations.jsonl``, ``grades.jsonl``;
  see `virgo.eval.run`);
- a folder whose sub-folders are eval runs of one model (a demo variant: ``eval/virgo-t/{visual_easy,text,...}``);
  each sub-folder's name becomes the items' set;
- a `virgo demo` folder (``eval/<variant>/<set>/``): its variants, base and Virgo-T by default;
- a generations JSONL file (`virgo generate`), with a grades file (`virgo grade`) and a problems file when given.

Reading never stops at a bad line: every bad record is reported with file, line and field, the good ones are kept
(the same readers `virgo eval` uses).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from virgo.config.cli import warn
from virgo.eval.layout import GENERATIONS_FILE, GRADES_FILE, METRICS_FILE, PROBLEMS_FILE, RUN_FILE, read_generations
from virgo.records import Generation, Grade, Problem, read_records

DEMO_DEFAULT = ("base", "virgo-t")  # the demo's headline comparison: the one-shot base against Virgo-T


class ViewInputError(ValueError):
    """An input the viewer cannot read; one line, for the CLI to print."""

    user_facing = True


Key = tuple[str, str, int]  # (set, problem id, sample)


@dataclass
class RunData:
    """One run as the viewer sees it. ``set`` is "" for a single eval run, the sub-folder name otherwise."""

    label: str
    path: Path
    info: dict[str, Any] = field(default_factory=dict)
    problems: dict[tuple[str, str], Problem] = field(default_factory=dict)
    generations: list[tuple[str, Generation]] = field(default_factory=list)
    grades: dict[Key, Grade] = field(default_factory=dict)
    accuracy: dict[str, float] = field(default_factory=dict)  # set ("" for the whole run) -> accuracy, if known


def _read(path: Path, cls: type) -> list:
    """Good records of a JSONL file; each bad line is reported (file:line: field: problem) and skipped."""
    result = read_records(path, cls, strict=False, resolve_images=cls is Problem, check_images=False)
    for err in result.errors:
        warn(f"skipped a bad {cls.__name__} record: {err}")
    return result.records


def is_eval_run(path: Path) -> bool:
    return path.is_dir() and (path / RUN_FILE).is_file() and (path / GENERATIONS_FILE).is_file()


def _eval_subruns(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if is_eval_run(p)) if path.is_dir() else []


def is_demo(path: Path) -> bool:
    return path.is_dir() and (path / "eval").is_dir() and any(_eval_subruns(p) for p in (path / "eval").iterdir()
                                                              if p.is_dir())


def _add_eval_run(run: RunData, d: Path, set_name: str) -> None:
    for p in _read(d / PROBLEMS_FILE, Problem) if (d / PROBLEMS_FILE).is_file() else []:
        run.problems.setdefault((set_name, p.id), p)
    run.generations += [(set_name, g) for g in read_generations(d / GENERATIONS_FILE)]
    if (d / GRADES_FILE).is_file():
        for g in _read(d / GRADES_FILE, Grade):
            run.grades.setdefault((set_name, g.id, g.sample), g)
    if (d / METRICS_FILE).is_file():
        acc = json.loads((d / METRICS_FILE).read_text(encoding="utf-8")).get("accuracy")
        if isinstance(acc, (int, float)):
            run.accuracy[set_name] = float(acc)


def _run_label(info: dict[str, Any], d: Path) -> str:
    # As `virgo report` names a run: its label, else the model's folder name.
    return str(info.get("label") or Path(str(info.get("model") or d.name)).name)


def load_eval_run(d: Path, label: str | None = None) -> RunData:
    info = json.loads((d / RUN_FILE).read_text(encoding="utf-8"))
    run = RunData(label or _run_label(info, d), d, info)
    _add_eval_run(run, d, "")
    return run


def load_multi_run(d: Path, label: str | None = None) -> RunData:
    """Sub-folders that are eval runs (one model on several sets) read as one run; each item keeps its set."""
    subs = _eval_subruns(d)
    info = json.loads((subs[0] / RUN_FILE).read_text(encoding="utf-8"))
    run = RunData(label or d.name, d, {**info, "sets": [s.name for s in subs]})
    for s in subs:
        _add_eval_run(run, s, s.name)
    return run


def demo_variants(d: Path) -> list[str]:
    """The demo's evaluated variants, in the order of its results.json (else base first, then by name)."""
    found = [p.name for p in sorted((d / "eval").iterdir()) if _eval_subruns(p)]
    order: list[str] = []
    results = d / "results.json"
    if results.is_file():
        order = list((json.loads(results.read_text(encoding="utf-8")).get("variants") or {}).keys())
    return sorted(found, key=lambda v: (order.index(v) if v in order else len(order), v != "base", v))


def load_jsonl_run(gens: Path, grades: Path | None, problems: Path | None, label: str | None = None) -> RunData:
    run = RunData(label or gens.stem, gens)
    run.generations = [("", g) for g in read_generations(gens)]
    if not run.generations:
        raise ViewInputError(f"{gens}: no readable generation records")
    if grades is not None:
        run.grades = {("", g.id, g.sample): g for g in reversed(_read(grades, Grade))}  # first wins
    if problems is not None:
        for p in _read(problems, Problem):
            run.problems.setdefault(("", p.id), p)
    return run


def _exists(p: str | Path | None, what: str) -> Path | None:
    if p is None:
        return None
    path = Path(p)
    if not path.exists():
        raise ViewInputError(f"{path}: no such {what}")
    return path


def load_sources(paths: list[str | Path], *, grades: list[str] | None = None, problems: list[str] | None = None,
                 labels: list[str] | None = None, variants: list[str] | None = None) -> list[RunData]:
    """The one or two runs named by ``paths`` (a demo folder alone gives two of its variants).

    ``grades`` / ``problems``: for JSONL generations, one file per run (a single problems file serves both).
    """
    if not 1 <= len(paths) <= 2:
        raise ViewInputError(f"give one or two runs, got {len(paths)}")
    grades, problems, labels = list(grades or []), list(problems or []), list(labels or [])
    for name, values in (("--grades", grades), ("--label", labels)):
        if len(values) > len(paths):
            raise ViewInputError(f"{name} given {len(values)} times for {len(paths)} run(s)")
    if len(problems) > len(paths):
        raise ViewInputError(f"--problems given {len(problems)} times for {len(paths)} run(s)")
    runs: list[RunData] = []
    for i, raw in enumerate(paths):
        p = _exists(raw, "run folder or generations file")
        label = labels[i] if i < len(labels) else None
        if p.is_file():
            g = _exists(grades[i] if i < len(grades) else None, "grades file")
            pr = _exists(problems[i] if i < len(problems) else (problems[0] if problems else None), "problems file")
            runs.append(load_jsonl_run(p, g, pr, label))
        elif is_eval_run(p):
            runs.append(load_eval_run(p, label))
        elif _eval_subruns(p):
            runs.append(load_multi_run(p, label))
        elif is_demo(p):
            if len(paths) != 1:
                raise ViewInputError(f"{p} is a demo folder: give it alone (its variants are compared), or give two "
                                     f"of its variant folders ({p / 'eval'}/<variant>)")
            runs += _load_demo(p, variants or [], labels)
        else:
            raise ViewInputError(f"{p}: not a `virgo eval` run folder (no {RUN_FILE} + {GENERATIONS_FILE}), a folder "
                                 "of eval runs, a `virgo demo` folder or a generations JSONL file")
    if variants and not any(is_demo(Path(x)) for x in paths):
        raise ViewInputError("--variant applies to a demo folder only")
    return runs


def _load_demo(d: Path, variants: list[str], labels: list[str]) -> list[RunData]:
    known = demo_variants(d)
    if not variants:
        variants = [v for v in DEMO_DEFAULT if v in known] or known[:2]
    if not 1 <= len(variants) <= 2:
        raise ViewInputError(f"--variant: give one or two, got {len(variants)}")
    missing = [v for v in variants if v not in known]
    if missing:
        raise ViewInputError(f"{d}: no evaluated variant {', '.join(missing)}; found: {', '.join(known) or 'none'}")
    return [load_multi_run(d / "eval" / v, labels[i] if i < len(labels) else v) for i, v in enumerate(variants)]
