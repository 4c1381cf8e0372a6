"""A generic JSONL benchmark: a user adds one with a YAML spec and no code.

Example spec (``my-bench.yaml``)::

    name: my-bench
    loader: jsonl
    source: where the file comes from
    splits: {test: my_bench.jsonl}
    profile: default
    breakdowns: [level]
    options:
      fields: {id: qid, question: problem, answer: gold, images: image, choices: options}
      meta: [level, topic]         # fields copied to Problem.meta (default: every unmapped field)

``fields`` maps Problem fields to the file's field names (defaults: the same names, so ``Problem``
records load as they are). ``images`` may be one path or a list, relative to the JSONL file (or
``image_root``). With ``choices`` the options are appended as ``Choices:\\nA. ...`` unless
``choices_in_question: false``. ``<image N>`` placeholders become ``[image N]``.
"""

from __future__ import annotations

from virgo.eval.benchmarks.base import LoadContext
from virgo.eval.sources import (
    as_list,
    format_choices,
    read_problems,
    resolve_image,
    rewrite_placeholders,
    text_or_none,
)
from virgo.records import Problem, RecordError

NAME = "jsonl"
OPTIONS = {"fields": {}, "meta": None, "choices_in_question": True, "image_root": None}
PROBLEM_FIELDS = ("id", "question", "answer", "images", "choices", "answer_type", "meta")


def load(ctx: LoadContext) -> list[Problem]:
    fields = {f: f for f in PROBLEM_FIELDS}
    unknown = set(ctx.options["fields"]) - set(PROBLEM_FIELDS)
    if unknown:
        raise ValueError(f"{ctx.spec.name}: options.fields has unknown keys {sorted(unknown)}; "
                         f"known: {list(PROBLEM_FIELDS)}")
    fields.update(ctx.options["fields"])
    path = ctx.locate()
    root = path.parent / ctx.options["image_root"] if ctx.options["image_root"] else path.parent
    return read_problems(path, lambda row: _problem(row, fields, root, ctx))


def _problem(row: dict, fields: dict[str, str], root, ctx: LoadContext) -> Problem:
    def get(name: str):
        return row.get(fields[name])

    for name in ("id", "question", "answer"):
        if text_or_none(get(name)) is None:
            raise RecordError("missing or empty", field=fields[name])
    pid = str(get("id"))
    images = [resolve_image(str(p), [root, ctx.data_dir], benchmark=ctx.spec.name, source=ctx.spec.source, item=pid)
              for p in as_list(get("images"), field=fields["images"]) if p]
    choices = [str(c) for c in as_list(get("choices"), field=fields["choices"])] or None
    question = rewrite_placeholders(str(get("question")).strip())
    if choices and ctx.options["choices_in_question"]:
        question = f"{question}\n{format_choices(choices)}"
    meta = dict(get("meta") or {}) if isinstance(get("meta"), dict) else {}
    mapped = {v for v in fields.values()}
    keep = ctx.options["meta"]
    for k, v in row.items():
        if (keep is None and k not in mapped) or (keep is not None and k in keep):
            meta.setdefault(k, v)
    answer_type = text_or_none(get("answer_type")) or ("multiple_choice" if choices else None)
    return Problem(id=pid, question=question, answer=str(get("answer")).strip(), images=images, choices=choices,
                   answer_type=answer_type, meta=meta)
