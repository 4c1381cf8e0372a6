"""MATH-Vision (MATH-V): ``data/{test,testmini}.jsonl`` + ``images/<id>.jpg``, the layout of the GitHub repository
mathllm/MATH-V (not the HF MathLLMs/MathVision parquet copy).

Fields: ``id, question, options[], answer, solution, level, subject, image``. With options the item
is multiple choice (answer = letter A-E) and the options are appended as ``Choices:``; an empty
options list is free-form, except single-letter answers whose options are drawn in the image.
"""

from __future__ import annotations

from virgo.eval.benchmarks.base import LoadContext
from virgo.eval.sources import (
    LETTERS,
    format_choices,
    read_problems,
    require_text,
    resolve_image,
    rewrite_placeholders,
    text_or_none,
)
from virgo.records import Problem

NAME = "mathvision"
OPTIONS: dict = {}


def load(ctx: LoadContext) -> list[Problem]:
    path = ctx.locate()
    # The official layout keeps images/ at the repository root, next to data/.
    roots = [path.parent.parent, path.parent, ctx.data_dir]
    return read_problems(path, lambda row: _problem(row, roots, ctx))


def _problem(row: dict, roots, ctx: LoadContext) -> Problem:
    require_text(row, "id", "question", "answer")
    pid = str(row["id"])
    options = [rewrite_placeholders(str(o)) for o in (row.get("options") or [])]
    answer = str(row["answer"]).strip()
    question = rewrite_placeholders(str(row["question"]).strip())
    if options:
        question = f"{question}\n{format_choices(options)}"
        answer_type = "multiple_choice"
    elif len(answer) == 1 and answer in LETTERS[:5]:
        answer_type = "multiple_choice"  # the options are drawn in the image
    else:
        answer_type = "free_form"
    images = []
    if text_or_none(row.get("image")):
        images.append(resolve_image(row["image"], roots, benchmark=ctx.spec.name, source=ctx.spec.source, item=pid))
    meta = {"level": row.get("level"), "subject": row.get("subject"), "question_type": answer_type}
    if answer_type == "multiple_choice" and not options:
        meta["choices_in_image"] = True
    return Problem(id=pid, question=question, answer=answer, images=images, choices=options or None,
                   answer_type=answer_type, meta=meta)
