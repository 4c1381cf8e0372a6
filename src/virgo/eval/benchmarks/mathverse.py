"""MathVerse testmini (ZrrSkywalker/MathVerse; HF AI4Math/MathVerse): five problem versions + text-only.

``testmini.json`` holds 788 problems x 5 versions (Text Dominant, Text Lite, Vision Intensive, Vision
Dominant, Vision Only), fields ``sample_index, problem_index, problem_version, question, image,
answer, question_type, metadata{split, source, subject, subfield}, query_wo, query_cot``; images under
``images/`` (e.g. ``images/images_version_1-4/image_685.png``). ``testmini_text_only.json`` is the
sixth, text-only version in a separate file. The paper (after VLMEvalKit) excludes text-only: split
``testmini`` loads the five versions (``include_text_only: true`` adds the text-only file), split
``testmini_text_only`` loads only the text-only file.

The question text is the ``question`` field (multiple-choice questions already carry their
``Choices:`` block); ``question_field: query_cot`` uses the official CoT query instead. A Vision Only
item has an empty question (it is in the image), so its ``query_cot`` instruction is used.
"""

from __future__ import annotations

import re
from pathlib import Path

from virgo.eval.benchmarks.base import LoadContext
from virgo.eval.sources import read_rows, resolve_image, rewrite_placeholders, text_or_none
from virgo.records import Problem, RecordError

NAME = "mathverse"
OPTIONS = {"include_text_only": False, "versions": None, "question_field": "question"}
TEXT_ONLY = "Text Only"
VERSIONS = ("Text Dominant", "Text Lite", "Vision Intensive", "Vision Dominant", "Vision Only", TEXT_ONLY)
_CHOICE_LINE = re.compile(r"^\s*\(?([A-H])\)?\s*[:.：)]\s*(.*?)\s*$")


def load(ctx: LoadContext) -> list[Problem]:
    if ctx.options["question_field"] not in ("question", "query_cot", "query_wo"):
        raise ValueError("mathverse: question_field must be question, query_cot or query_wo")
    files = [ctx.locate()]
    if ctx.split == "testmini" and ctx.options["include_text_only"]:
        files.append(ctx.locate(ctx.spec.split_path("testmini_text_only")))
    versions = ctx.options["versions"]
    if versions is not None:
        versions = [versions] if isinstance(versions, str) else list(versions)
        bad = [v for v in versions if v not in VERSIONS]
        if bad:
            raise ValueError(f"mathverse: unknown problem versions {bad}; known: {list(VERSIONS)}")
    problems = []
    for path in files:
        text_only_file = "text_only" in path.name or "text-only" in path.name
        roots = [path.parent / "images", path.parent, path.parent.parent / "images", ctx.data_dir / "images",
                 ctx.data_dir]
        for row_no, row in read_rows(path):
            try:
                p = _problem(row, roots, ctx, text_only_file)
            except RecordError as e:
                raise e.located(path, row_no) from None
            if versions is not None and p.meta["problem_version"] not in versions:
                continue
            problems.append(p)
    return problems


def parse_choices(question: str) -> list[str] | None:
    """Option texts from a ``Choices:`` block (``A:40°`` / ``A. 40°`` / ``(A) 40°`` lines), if any.

    A few official items (testmini 339, 340, 429, 430) spell the header ``Choice:``; both are read.
    """
    headers = [(question.rfind(h), h) for h in ("Choices:", "Choice:")]
    idx, header = max(headers)
    if idx < 0:
        return None
    choices = []
    for line in question[idx + len(header):].splitlines():
        m = _CHOICE_LINE.match(line)
        if m:
            choices.append(m.group(2))
        elif line.strip() and choices:
            choices[-1] = f"{choices[-1]} {line.strip()}"  # an option wrapped over two lines
    return choices or None


def _problem(row: dict, roots: list[Path], ctx: LoadContext, text_only_file: bool) -> Problem:
    for key in ("sample_index", "answer", "problem_version"):
        if text_or_none(row.get(key)) is None:
            raise RecordError("missing or empty", field=key)
    version = str(row["problem_version"])
    if version not in VERSIONS:
        raise RecordError(f"unknown problem version {version!r}", field="problem_version")
    sample = str(row["sample_index"])
    pid = f"text-only-{sample}" if text_only_file else sample
    field = ctx.options["question_field"]
    question = text_or_none(row.get(field)) or text_or_none(row.get("query_cot"))
    if question is None:
        raise RecordError("empty question and no query_cot", field=field)
    question = rewrite_placeholders(question)
    qtype = str(row.get("question_type") or "")
    images = []
    if version != TEXT_ONLY and text_or_none(row.get("image")):
        images.append(resolve_image(row["image"], roots, benchmark=ctx.spec.name, source=ctx.spec.source,
                                    item=pid))
    md = row.get("metadata") or {}
    meta = {
        "problem_version": version,
        "problem_index": str(row.get("problem_index")),
        "question_type": qtype,
        "subject": md.get("subject"),
        "subfield": md.get("subfield"),
        "source": md.get("source"),
    }
    choices = parse_choices(str(row.get("question") or "")) if qtype == "multi-choice" else None
    return Problem(id=pid, question=question, answer=str(row["answer"]).strip(), images=images, choices=choices,
                   answer_type="multiple_choice" if qtype == "multi-choice" else "free_form", meta=meta)
