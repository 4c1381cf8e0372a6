"""Decontamination: which training records share an n-gram with a benchmark item, and a copy without them.

The test is the one open-r1 (``scripts/decontaminate.py``) and s1 (``decontaminate_util.py``) run: word n-grams of
normalised text; a training record overlapping any n-gram of a benchmark item is contaminated. The default n is 13
(s1's ``build_ngram_lookup`` default, the GPT-3 paper's choice; open-r1's script takes ``--ngram_size``, default 8).
Their normalisation is lower case plus collapsed whitespace; ours goes further so that formatting does not hide a
copy (a LaTeX or Markdown rendering of the same question still matches):

1. Unicode NFKC (full-width digits and letters, ligatures, ``²`` -> ``2``), then lower case;
2. thought markers (``<|begin_of_thought|>`` ...) and image placeholders (``<image 1>``, ``[image 1]``) removed;
3. words are runs of letters and digits (any script); everything else -- punctuation, LaTeX backslashes and braces,
   ``$``, Markdown -- separates words; each CJK character is a word of its own (those scripts do not space words).

A benchmark item shorter than n words is matched whole (its full word sequence) when it has at least
``min_words`` words, so a short question copied verbatim is still found. Benchmarks come from the registry (a name
and its data folder, loaded by the benchmark's own loader) or from a Problem JSONL. This is exact matching over a
hash index (no library does it better for this size; ``datasketch``-style MinHash would trade exactness for scale).
"""

from __future__ import annotations

import json
import re
import unicodedata
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_MARKERS = re.compile(r"<\|(?:begin|end)_of_(?:thought|solution)\|>|</?think>")
_PLACEHOLDER = re.compile(r"<image[ _]?\d*>|\[image \d+\]")
_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\W_]+")
NORMALISATION = ("NFKC, lower case, thought markers and image placeholders removed, words = runs of letters and "
                 "digits (each CJK character one word); punctuation, LaTeX and Markdown only separate words")


def words(text: str) -> list[str]:
    """The normalised word sequence of ``text`` (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _PLACEHOLDER.sub(" ", _MARKERS.sub(" ", text))
    return _WORD.findall(text)


def ngrams(seq: list[str], n: int) -> Iterator[str]:
    for i in range(len(seq) - n + 1):
        yield " ".join(seq[i:i + n])


@dataclass
class Item:
    benchmark: str
    id: str
    text: str


@dataclass
class Index:
    """n-gram -> benchmark items; short items indexed whole, by length."""

    n: int
    min_words: int
    grams: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    short: dict[int, dict[str, list[tuple[str, str]]]] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # benchmark -> item count

    def add(self, item: Item) -> None:
        seq = words(item.text)
        self.items[item.benchmark] += 1
        key = (item.benchmark, item.id)
        if len(seq) >= self.n:
            for g in set(ngrams(seq, self.n)):
                self.grams[g].append(key)
        elif len(seq) >= self.min_words:
            self.short.setdefault(len(seq), defaultdict(list))[" ".join(seq)].append(key)

    def matches(self, text: str) -> dict[tuple[str, str], str]:
        """Benchmark items (benchmark, id) that ``text`` overlaps, each with the first shared n-gram."""
        seq = words(text)
        found: dict[tuple[str, str], str] = {}
        for g in ngrams(seq, self.n):
            for key in self.grams.get(g, ()):
                found.setdefault(key, g)
        for length, table in self.short.items():
            for g in ngrams(seq, length):
                for key in table.get(g, ()):
                    found.setdefault(key, g)
        return found


def benchmark_items(spec: str) -> list[Item]:
    """Items of ``NAME=DIR`` / ``NAME:SPLIT=DIR`` (a registered benchmark and its data folder) or a Problem JSONL."""
    from virgo.records import Problem, read_records

    name, sep, data_dir = spec.partition("=")
    if not sep:
        path = Path(spec)
        if not path.is_file():
            raise ValueError(f"--against {spec!r}: give NAME=DATA_DIR (a registered benchmark and its folder), "
                             "NAME:SPLIT=DATA_DIR, or a Problem JSONL file")
        return [Item(path.stem, p.id, p.question) for p in read_records(path, Problem, resolve_images=False)]
    bench, _, split = name.partition(":")
    return [Item(bench, p.id, p.question) for p in load_benchmark(bench, data_dir, split or None)]


def load_benchmark(name: str, data_dir: str | Path, split: str | None = None) -> list[Any]:
    """A registered benchmark's problems; items whose images are missing are kept (only their text is needed)."""
    from virgo.eval.registry import get_benchmark
    from virgo.eval.sources import DataMissingError

    spec = get_benchmark(name)
    try:
        return spec.load(data_dir, split)
    except DataMissingError:
        if "missing_images" not in spec.resolve_options():
            raise
        with warnings.catch_warnings():  # only the text is compared: missing images are not news here
            warnings.simplefilter("ignore")
            return spec.load(data_dir, split, missing_images="text")


def record_text(record: Any, fields: str) -> str:
    """The text of a training record that is compared: its question, or ``all`` (question and response)."""
    question = getattr(record, "question", "") or ""
    if fields == "question":
        return question
    response = getattr(record, "response", None) or ""
    return f"{question}\n{response}"


@dataclass
class Result:
    overlaps: list[dict[str, Any]]
    contaminated: set[int]  # indices of contaminated training records
    n_train: int
    items: dict[str, int]


def check(records: list[Any], index: Index, fields: str = "question") -> Result:
    overlaps, bad = [], set()
    for i, r in enumerate(records):
        for (bench, item), gram in sorted(index.matches(record_text(r, fields)).items()):
            overlaps.append({"train_index": i, "train_id": getattr(r, "id", None), "benchmark": bench,
                             "item_id": item, "ngram": gram})
            bad.add(i)
    return Result(overlaps, bad, len(records), dict(index.items))


def build_index(items: Iterable[Item], n: int = 13, min_words: int = 8) -> Index:
    index = Index(n, min_words)
    for item in items:
        index.add(item)
    return index


def report_json(result: Result, *, train: str, against: list[str], n: int, min_words: int,
                fields: str) -> dict[str, Any]:
    per: dict[str, dict[str, set]] = defaultdict(lambda: {"train": set(), "items": set()})
    for o in result.overlaps:
        per[o["benchmark"]]["train"].add(o["train_index"])
        per[o["benchmark"]]["items"].add(o["item_id"])
    return {"train": train, "against": against, "ngram": n, "min_words": min_words, "fields": fields,
            "normalisation": NORMALISATION, "n_train": result.n_train, "n_contaminated": len(result.contaminated),
            "benchmarks": {b: {"items": k, "train_records_overlapping": len(per[b]["train"]),
                               "items_overlapped": len(per[b]["items"])} for b, k in result.items.items()},
            "overlaps": result.overlaps}


def summary_markdown(report: dict[str, Any], limit: int = 200) -> str:
    lines = [f"# Decontamination of {report['train']}", "",
             (f"{report['n_contaminated']} of {report['n_train']} training records share a {report['ngram']}-gram "
              f"with a benchmark item (compared: {report['fields']}; normalisation: {report['normalisation']})."), "",
             "| benchmark | items | training records overlapping | items overlapped |", "|---|---|---|---|"]
    lines += [f"| {b} | {v['items']} | {v['train_records_overlapping']} | {v['items_overlapped']} |"
              for b, v in report["benchmarks"].items()]
    if report["overlaps"]:
        lines += ["", "| training record | benchmark | item | matched n-gram |", "|---|---|---|---|"]
        for o in report["overlaps"][:limit]:
            gram = o["ngram"].replace("|", "\\|")
            lines.append(f"| {o['train_id'] or o['train_index']} | {o['benchmark']} | {o['item_id']} | {gram} |")
        if len(report["overlaps"]) > limit:
            lines.append(f"\n... and {len(report['overlaps']) - limit} more (all in the JSON report)")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], path: Path) -> tuple[Path, Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    md = path.with_suffix(".md")
    md.write_text(summary_markdown(report), encoding="utf-8")
    return path, md


# ----------------------------------------------------------------------------- train pre-flight

def _first_loadable(name: str, dirs: list[Path]) -> list[Any]:
    """Every split of benchmark ``name`` that loads from the first folder where any does."""
    from virgo.eval.registry import get_benchmark

    splits = list(get_benchmark(name).splits)
    for d in dirs:
        if not d.is_dir():
            continue
        found: dict[str, Any] = {}
        for split in splits:
            try:
                found.update((p.id, p) for p in load_benchmark(name, d, split))
            except Exception:  # noqa: BLE001, S112 - not this layout, or this split is absent: not "found" here
                continue
        if found:
            return list(found.values())
    return []


def found_benchmarks(search_dirs: Iterable[str | Path]) -> list[Item]:
    """Items of every registered benchmark found on disk (any of its splits): ``DIR/<name>`` (or ``DIR`` itself) for
    each search dir."""
    from virgo.eval.registry import list_benchmarks

    dirs = [Path(d) for d in search_dirs]
    return [Item(name, p.id, p.question) for name in list_benchmarks()
            for p in _first_loadable(name, [c for d in dirs for c in (d / name, d)])]


def preflight_warnings(train_files: Iterable[str | Path], search_dirs: Iterable[str | Path], *, n: int = 13,
                       min_words: int = 8) -> list[str]:
    """One warning per (training file, benchmark) that overlap; [] when clean or when no benchmark is on disk.

    For `virgo train`'s pre-flight: ``search_dirs`` are folders that may hold benchmark data (e.g. ``../shared/data``
    or ``$VIRGO_BENCH_DIR``).
    """
    from virgo.data.formats import read_dataset

    index = build_index(found_benchmarks(search_dirs), n, min_words)
    if not index.items:
        return []
    out = []
    for f in train_files:
        _, read = read_dataset(f)
        result = check(read.records, index)
        per: dict[str, list[dict]] = defaultdict(list)
        for o in result.overlaps:
            per[o["benchmark"]].append(o)
        for bench, hits in per.items():
            first = hits[0]
            out.append(f"{f}: {len({h['train_index'] for h in hits})} training record(s) share a {n}-gram with "
                       f"{len({h['item_id'] for h in hits})} {bench} item(s) (e.g. record {first['train_id']} and "
                       f"item {first['item_id']}: \"{first['ngram']}\"); `virgo data decontaminate {f} --against "
                       f"{bench}=DIR` writes a filtered copy")
    return out


# ----------------------------------------------------------------------------- `virgo data decontaminate`

def default_out(train: Path) -> Path:
    if train.is_dir() or not train.suffix:
        return train.with_name(train.name + ".decontaminated")
    return train.with_name(f"{train.stem}.decontaminated{train.suffix}")


def run_decontaminate(cfg: Any, echo=print) -> dict[str, Any]:
    """The command: read TRAIN (bad records reported, good ones kept), check it, write the filtered copy and the
    report; returns the report."""
    from virgo.data.formats import output_format, read_dataset

    train = Path(cfg.train)
    fin, read = read_dataset(train, cfg.format)
    for err in read.errors:
        echo(f"warning: skipped a bad record: {err}")
    items = [item for spec in cfg.against for item in benchmark_items(spec)]
    index = build_index(items, cfg.ngram, cfg.min_words)
    result = check(read.records, index, cfg.fields)
    out = Path(cfg.out) if cfg.out else default_out(train)
    kept = [r for i, r in enumerate(read.records) if i not in result.contaminated]
    output_format(out, None, fin.name).write(out, kept)
    report = report_json(result, train=str(train), against=list(cfg.against), n=cfg.ngram,
                         min_words=cfg.min_words, fields=cfg.fields)
    report["out"] = str(out)
    json_path, md_path = write_report(report, Path(cfg.report) if cfg.report else
                                      out.parent / f"{train.stem}.decontamination.json")
    echo(f"{train}: {len(result.contaminated)} of {result.n_train} record(s) overlap "
         + ", ".join(f"{b} ({v['train_records_overlapping']} records / {v['items']} items)"
                     for b, v in report["benchmarks"].items())
         + f"; {len(kept)} kept -> {out}; report: {json_path}, {md_path}")
    return report
