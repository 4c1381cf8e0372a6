"""MMMU (MMMU-Benchmark/MMMU; HF MMMU/MMMU): the official per-subject parquet layout, and MMMU-style JSONL.

* **Parquet** (official): ``<Subject>/<split>-*.parquet`` with columns ``id, question, options`` (a
  Python-literal list string, parsed with ``ast.literal_eval`` only), ``explanation, image_1..image_7``
  (``{"bytes", "path"}``), ``img_type, answer, topic_difficulty, question_type, subfield``.
* **JSONL** (e.g. the MMMU-Pro tool sample): ``<split>.jsonl`` or ``data.jsonl`` with the same fields
  and ``image_N`` as paths relative to the file. Without an ``id`` the id comes from ``image_1``'s
  file name (``test_Art_113_1.png`` -> ``test_Art_113``), or the line number if those collide.

Images: every present ``image_N`` in order of N. The chat template shows all images before the text
(as Virgo does), so each ``<image N>`` placeholder, in the question and in the options, is rewritten
to ``[image k]`` where k is that image's position in the list shown. Multiple-choice options are
appended as ``Choices:\\nA. ...``; open questions keep their free-form answer.
"""

from __future__ import annotations

import re
from pathlib import Path

from virgo.eval.benchmarks.base import LoadContext
from virgo.eval.sources import (
    DataMissingError,
    as_list,
    format_choices,
    image_cache_dir,
    materialize_image,
    read_rows,
    require_text,
    resolve_image,
    rewrite_placeholders,
    text_or_none,
)
from virgo.records import Problem, RecordError

NAME = "mmmu"
OPTIONS: dict = {}
MAX_IMAGES = 7
_ID_RE = re.compile(r"^(validation|dev|test)_(.+)_(\d+)$")


def _files(ctx: LoadContext) -> list[Path]:
    prefix = ctx.spec.split_path(ctx.split)
    parquet = sorted(p for p in ctx.data_dir.rglob(f"{prefix}-*.parquet") if ".virgo-images" not in p.parts)
    if parquet:
        return parquet
    for name in (f"{prefix}.jsonl", "data.jsonl"):
        if (ctx.data_dir / name).is_file():
            return [ctx.data_dir / name]
    raise DataMissingError(ctx.spec.name, f"the {ctx.split} split",
                           [ctx.data_dir / f"<Subject>/{prefix}-*.parquet", ctx.data_dir / f"{prefix}.jsonl",
                            ctx.data_dir / "data.jsonl"], ctx.spec.source)


def load(ctx: LoadContext) -> list[Problem]:
    problems: list[Problem] = []
    for path in _files(ctx):
        ctx.files.append(path)
        rows = list(read_rows(path))
        ids = _ids(rows, path, ctx.split)
        for (row_no, row), pid in zip(rows, ids):
            try:
                problems.append(_problem(row, pid, path, ctx))
            except RecordError as e:
                raise e.located(path, row_no) from None
    return problems


def _ids(rows: list[tuple[int, dict]], path: Path, split: str) -> list[str]:
    if all(text_or_none(r.get("id")) for _, r in rows):
        return [str(r["id"]) for _, r in rows]
    derived = []
    for _, r in rows:
        img = text_or_none(r.get("image_1")) if not isinstance(r.get("image_1"), dict) else None
        derived.append(re.sub(r"_1$", "", Path(img).stem) if img else None)
    if None in derived or len(set(derived)) != len(derived):
        return [f"{path.stem}-{row_no}" for row_no, _ in rows]
    return derived


def _problem(row: dict, pid: str, path: Path, ctx: LoadContext) -> Problem:
    require_text(row, "question", "answer")
    images: list[str] = []
    mapping: dict[int, int] = {}
    for n in range(1, MAX_IMAGES + 1):
        cell = row.get(f"image_{n}")
        if not cell:
            continue
        if isinstance(cell, dict):
            img = materialize_image(cell, image_cache_dir(ctx.data_dir, ctx.spec.name), f"{pid}_{n}")
        else:
            img = resolve_image(str(cell), [path.parent, ctx.data_dir], benchmark=ctx.spec.name,
                                source=ctx.spec.source, item=pid)
        if img:
            images.append(img)
            mapping[n] = len(images)
    options = [rewrite_placeholders(str(o), mapping) for o in as_list(row.get("options"), field="options")]
    question = rewrite_placeholders(str(row["question"]).strip(), mapping)
    qtype = str(row.get("question_type") or ("multiple-choice" if options else "open"))
    multiple_choice = qtype == "multiple-choice" and bool(options)
    if multiple_choice:
        question = f"{question}\n{format_choices(options)}"
    m = _ID_RE.match(pid)
    subject = path.parent.name if path.suffix == ".parquet" else (m.group(2) if m else None)
    difficulty = text_or_none(row.get("topic_difficulty"))
    meta = {
        "subject": subject,
        "subfield": text_or_none(row.get("subfield")),
        "topic_difficulty": difficulty.capitalize() if difficulty else None,
        "question_type": qtype,
        "img_type": as_list(row.get("img_type"), field="img_type") if row.get("img_type") else None,
        "num_images": len(images),
    }
    return Problem(id=pid, question=question, answer=str(row["answer"]).strip(), images=images,
                   choices=options if multiple_choice else None,
                   answer_type="multiple_choice" if multiple_choice else "free_form", meta=meta)
