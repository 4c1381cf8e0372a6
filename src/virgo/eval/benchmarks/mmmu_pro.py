"""MMMU-Pro (MMMU-Benchmark/MMMU ``mmmu-pro/``; HF MMMU/MMMU_Pro): the standard setting with 10 options and the
vision setting.

Layout (HF): one folder per setting, ``standard (10 options)/``, ``standard (4 options)/`` and ``vision/``, each with
``test-*.parquet`` (or the converted ``test/0000.parquet``). Standard rows are MMMU rows (``id, question, options,
explanation, image_1..image_7, img_type, answer, topic_difficulty, subject``; options shuffled, and each ``<image
i>`` still means ``image_i``, as the repository's README warns: the placeholders are mapped exactly as for MMMU).
Vision rows are ``id, image`` (a screenshot or photo holding the question *and* its options), ``options, answer,
subject``: the model sees only the image and the official vision instruction; the options are kept for the grader,
not shown. Offline, the 21-item MMMU-style sample of the repository's ``mmmu-pro/tool/data.jsonl`` (``question,
options, answer, image_1``) loads as the standard setting from a ``data.jsonl`` / ``test.jsonl`` in the data folder.

Official metrics (``official_metrics``), after ``mmmu-pro/evaluate.py``: accuracy overall, per subject, and per
discipline (the ``DOMAIN_CAT2SUB_CAT`` grouping: Art and Design, Business, Science, Health and Medicine, Humanities
and Social Science, Tech and Engineering), instance-weighted as ``calculate_ins_level_acc``. "Right" is the grader's
verdict under the MMMU profile, which reads the option letter like ``parse_multi_choice_response`` but never falls
back to a random letter (the official parser picks one at random when it finds none, so its numbers carry
1/10 of a point of chance per unparsed response). The paper's MMMU-Pro score is the mean of the standard (10
options) and vision settings: run both and read the two accuracies side by side in ``virgo report``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from virgo.eval.benchmarks import mmmu
from virgo.eval.benchmarks.base import LoadContext
from virgo.eval.sources import (
    DataMissingError,
    as_list,
    image_cache_dir,
    materialize_image,
    read_rows,
    resolve_image,
    text_or_none,
)
from virgo.records import Problem, RecordError

NAME = "mmmu_pro"
OPTIONS: dict = {}
VISION_QUESTION = "Write out the multiple-choice question in the image and then solve it."
DOMAINS = {
    "Art and Design": ["Art", "Art_Theory", "Design", "Music"],
    "Business": ["Accounting", "Economics", "Finance", "Manage", "Marketing"],
    "Science": ["Biology", "Chemistry", "Geography", "Math", "Physics"],
    "Health and Medicine": ["Basic_Medical_Science", "Clinical_Medicine", "Diagnostics_and_Laboratory_Medicine",
                            "Pharmacy", "Public_Health"],
    "Humanities and Social Science": ["History", "Literature", "Sociology", "Psychology"],
    "Tech and Engineering": ["Agriculture", "Architecture_and_Engineering", "Computer_Science", "Electronics",
                             "Energy_and_Power", "Materials", "Mechanical_Engineering"],
}
_SUBJECT_ID = re.compile(r"^(?:validation|dev|test)_(.+)_\d+$")


def _files(ctx: LoadContext) -> list[Path]:
    folder = ctx.data_dir / ctx.spec.split_path(ctx.split)
    parquet = sorted(p for p in folder.rglob("*.parquet")) if folder.is_dir() else []
    if parquet:
        return parquet
    names = ["data.jsonl", "test.jsonl"] if ctx.split == "standard" else [f"{ctx.split}.jsonl"]
    for name in names:
        if (ctx.data_dir / name).is_file():
            return [ctx.data_dir / name]
    raise DataMissingError(ctx.spec.name, f"the {ctx.split} setting",
                           [folder / "test-*.parquet"] + [ctx.data_dir / n for n in names], ctx.spec.source)


def load(ctx: LoadContext) -> list[Problem]:
    problems: list[Problem] = []
    for path in _files(ctx):
        ctx.files.append(path)
        rows = list(read_rows(path))
        ids = mmmu._ids(rows, path, "test")
        for (row_no, row), pid in zip(rows, ids):
            try:
                p = _vision(row, pid, ctx) if ctx.split == "vision" else mmmu._problem(row, pid, path, ctx)
            except RecordError as e:
                raise e.located(path, row_no) from None
            p.meta["subject"] = subject_of(row, pid)
            p.meta["domain"] = domain_of(p.meta["subject"])
            p.meta["setting"] = ctx.split
            problems.append(p)
    return problems


def subject_of(row: dict[str, Any], pid: str) -> str | None:
    subject = text_or_none(row.get("subject"))
    if subject is None:
        m = _SUBJECT_ID.match(pid)
        subject = m.group(1) if m else None
    return subject.replace(" ", "_") if subject else None


def domain_of(subject: str | None) -> str | None:
    return next((d for d, subjects in DOMAINS.items() if subject in subjects), None)


def _vision(row: dict[str, Any], pid: str, ctx: LoadContext) -> Problem:
    if text_or_none(row.get("answer")) is None:
        raise RecordError("missing or empty", field="answer")
    options = [str(o) for o in as_list(row.get("options"), field="options")]
    if not options:
        raise RecordError("missing or empty", field="options")
    cell = row.get("image")
    if isinstance(cell, dict):
        image = materialize_image(cell, image_cache_dir(ctx.data_dir, ctx.spec.name), pid)
    elif text_or_none(cell):
        image = resolve_image(str(cell), [ctx.data_dir], benchmark=ctx.spec.name, source=ctx.spec.source, item=pid)
    else:
        image = None
    if not image:
        raise RecordError("the vision setting needs the question's image", field="image")
    return Problem(id=pid, question=VISION_QUESTION, answer=str(row["answer"]).strip(), images=[image],
                   choices=options, answer_type="multiple_choice", meta={"question_type": "multiple-choice"})


def official_metrics(inp) -> dict[str, Any]:
    from virgo.eval.official import breakdown_tables, grouped, summary_table

    correct = {p.id: inp.correct(p.id) for p in inp.problems if p.id in inp.grades}
    n = len(correct)
    domains = grouped(inp.problems, "domain", correct)
    setting = next((p.meta.get("setting") for p in inp.problems), None)
    return {
        "title": f"MMMU-Pro ({setting} setting)",
        "summary": summary_table(NAME, [("accuracy", sum(correct.values()) / n if n else None, "pct")]
                                 + [(d, sum(v) / len(v), "pct") for d, v in domains.items() if d != "(none)"]),
        "tables": breakdown_tables(inp.problems, ["domain", "subject"], correct),
        "notes": [(f"{n} items; instance-weighted accuracy (calculate_ins_level_acc); no random fallback for "
                  "unparsed answers")],
    }
