"""DynaMath seed questions (DynaMath/DynaMath): ``dataset/dataset.json`` + ``dataset/image/image<N>.png``, and
generated variants when present.

Layout: a JSON object id -> ``question, answer, image ("image/image12.png"), answer_type (float | multiple choice |
text), subject, level``. Multiple-choice questions end with ``choice: (A) odd (B) even ...`` and the answer is the
letter. Each seed question is a program that generates variants (other numbers, functions, colours, graphs); the
paper scores 10 variants per seed. Variants are read when present (option ``variants: auto``, the default;
``none`` reads the seeds only) from ``variants_dir`` (default: the data folder):

* folders whose name contains ``variant`` with a ``dataset.json`` in the seed layout (what the generator writes for
  one version), the variant number taken from the folder name;
* the HF release DynaMath/DynaMath_Sample: ``data/sample<k>-*.parquet`` (``id, question, image, decoded_image,
  ground_truth, answer_type, subject, knowledge_level``), images written out once to a cache.

Ids: a seed is ``<id>``, variant k of it ``<id>-v<k>`` (``meta.seed_id``, ``meta.variant``; 0 = the seed).

Official metrics (``official_metrics``), after ``evaluation/opensource_json_eval.py`` and the paper (arXiv
2411.00836): an answer is right -- float: ``|answer - truth| <= 0.001`` (a value written with π is multiplied out),
multiple choice: a one-character answer equal to the letter, or the letter within its first three characters,
text: the truth inside the answer -- applied to the grader's extracted answer (the official script reads the
model's JSON "short answer"). Average-case accuracy is over every question evaluated, by subject and by level;
worst-case accuracy is the share of seed questions answered right in *every* version evaluated (seed and variants),
and reasoning robustness RR = worst-case / average-case. Without variants every seed has one version and
worst-case equals average-case (a note says so). The grader gets the same rules: a 0.001 tolerance for floats.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from virgo.eval.benchmarks.base import LoadContext
from virgo.eval.sources import (
    LETTERS,
    format_choices,
    image_cache_dir,
    materialize_image,
    read_problems,
    require_text,
    resolve_image,
    text_or_none,
)
from virgo.records import Problem

NAME = "dynamath"
OPTIONS = {"variants": "auto", "variants_dir": None}
TOLERANCE = 1e-3
_CHOICE = re.compile(r"\(([A-H])\)\s*")
_NUM = re.compile(r"(\d+)")


def load(ctx: LoadContext) -> list[Problem]:
    if ctx.options["variants"] not in ("auto", "none"):
        raise ValueError("dynamath: variants must be auto or none")
    path = ctx.locate()
    problems = _read_seed_layout(path, ctx, variant=0)
    if ctx.options["variants"] == "auto":
        base = Path(ctx.options["variants_dir"]) if ctx.options["variants_dir"] else ctx.data_dir
        for k, vpath in _variant_sets(base):
            ctx.files.append(vpath)
            problems += (_read_parquet(vpath, ctx, k) if vpath.suffix == ".parquet"
                         else _read_seed_layout(vpath, ctx, variant=k))
    return problems


def _variant_sets(base: Path) -> list[tuple[int, Path]]:
    found: list[tuple[int, Path]] = []
    for d in sorted(base.rglob("*")):
        if d.is_dir() and "variant" in d.name.lower() and (d / "dataset.json").is_file():
            m = _NUM.search(d.name)
            found.append((int(m.group(1)) if m else len(found) + 1, d / "dataset.json"))
        elif d.is_file() and d.suffix == ".parquet" and re.match(r"sample(\d+)-", d.name):
            found.append((int(re.match(r"sample(\d+)-", d.name).group(1)), d))
    return sorted(found, key=lambda kp: (kp[0], str(kp[1])))


def _read_seed_layout(path: Path, ctx: LoadContext, variant: int) -> list[Problem]:
    roots = [path.parent, ctx.data_dir / "dataset", ctx.data_dir]
    def image(rel: str, pid: str) -> str:
        return resolve_image(rel, roots, benchmark=ctx.spec.name, source=ctx.spec.source, item=pid)

    return read_problems(path, lambda row: _problem(row, variant, image))


def _read_parquet(path: Path, ctx: LoadContext, variant: int) -> list[Problem]:
    cache = image_cache_dir(ctx.data_dir, ctx.spec.name)

    def make(row: dict[str, Any]) -> Problem:
        row = {**row, "answer": row.get("ground_truth", row.get("answer")),
               "level": row.get("knowledge_level", row.get("level"))}

        def image(rel: str, pid: str) -> str | None:
            return materialize_image(row.get("decoded_image"), cache, pid) or resolve_image(
                rel, [path.parent], benchmark=ctx.spec.name, source=ctx.spec.source, item=pid)

        return _problem(row, variant, image)

    return read_problems(path, make)


def split_choices(question: str) -> tuple[str, list[str]]:
    """``"... choice: (A) odd (B) even"`` -> (the question, option texts) when options follow a ``choice`` label."""
    idx = question.lower().rfind("choice")
    marks = list(_CHOICE.finditer(question, idx)) if idx >= 0 else []
    if not marks or marks[0].group(1) != "A":
        return question, []
    texts = [question[m.end():(marks[i + 1].start() if i + 1 < len(marks) else len(question))].strip(" ,;\n")
             for i, m in enumerate(marks)]
    return question[:idx].rstrip(), texts


def _problem(row: dict[str, Any], variant: int, image) -> Problem:
    require_text(row, "id", "question", "answer", "answer_type")
    seed = str(row["id"])
    pid = seed if variant == 0 else f"{seed}-v{variant}"
    kind = str(row["answer_type"]).strip().lower()
    question, answer = str(row["question"]).strip(), str(row["answer"]).strip()
    meta: dict[str, Any] = {"seed_id": seed, "variant": variant, "subject": row.get("subject"),
                            "level": row.get("level"), "official_answer_type": kind}
    choices = None
    if kind == "multiple choice":
        stem, texts = split_choices(question)
        if texts and answer in LETTERS[:len(texts)]:
            question, choices = f"{stem}\n{format_choices(texts)}", texts
    elif kind == "float":
        meta["tolerance"] = TOLERANCE
        question += " Answer the question with a floating-point number." if "floating" not in question else ""
    images = [image(str(row["image"]), pid)] if text_or_none(row.get("image")) else []
    return Problem(id=pid, question=question, answer=answer, images=[i for i in images if i], choices=choices,
                   answer_type="multiple_choice" if kind == "multiple choice" else
                   ("numeric" if kind == "float" else "free_form"), meta=meta)


# ----------------------------------------------------------------------------- the official metrics

def _float(text: str) -> float:
    """opensource_json_eval.py's ``transfer``: a value written with π is multiplied by pi."""
    text = text.replace("\\pi", "π")
    if "π" in text:
        head = text.split("π")[0].strip()
        return (float(head) if head not in ("", "+", "-") else float(head + "1")) * math.pi
    return float(text)


def official_correct(problem: Problem, extracted: str | None) -> bool:
    if extracted is None:
        return False
    answer, truth, kind = extracted.strip(), problem.answer, problem.meta.get("official_answer_type")
    if kind == "float":
        try:
            value = _float(answer.split(" ")[0] if " " in answer else answer)
            return abs(value - float(truth)) <= TOLERANCE
        except (ValueError, OverflowError):
            return False
    if kind == "multiple choice":
        return answer == truth if len(answer) == 1 else truth in answer[:3]
    return truth in answer


def official_metrics(inp) -> dict[str, Any]:
    from virgo.eval.official import breakdown_tables, summary_table

    correct = {p.id: official_correct(p, inp.extracted(p.id)) for p in inp.problems if p.id in inp.grades}
    versions: dict[str, list[bool]] = defaultdict(list)
    variants: set[int] = set()
    for p in inp.problems:
        if p.id in correct:
            versions[p.meta["seed_id"]].append(correct[p.id])
            variants.add(p.meta["variant"])
    n = len(correct)
    average = sum(correct.values()) / n if n else None
    worst = sum(all(v) for v in versions.values()) / len(versions) if versions else None
    notes = [f"{n} questions from {len(versions)} seeds, versions per seed: {len(variants)}"]
    if len(variants) <= 1:
        notes.append("no variants evaluated: worst-case accuracy equals average-case accuracy")
    return {
        "title": "DynaMath (average and worst case)",
        "summary": summary_table(NAME, [("average-case", average, "pct"), ("worst-case", worst, "pct"),
                                        ("RR", worst / average if average else None, "float"),
                                        ("seeds", len(versions), "int")]),
        "tables": breakdown_tables(inp.problems, ["subject", "level", ("answer type", "official_answer_type")],
                                   correct, what="average-case accuracy"),
        "notes": notes,
    }
