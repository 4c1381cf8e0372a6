"""MathVista testmini (lupantech/MathVista; HF AI4Math/MathVista): ``data/testmini.json`` + an image folder.

Layout: ``data/testmini.json`` maps pid -> ``question, image ("images/<pid>.jpg"), choices (list or null), unit,
precision, answer, question_type (multi_choice | free_form), answer_type (text | integer | float | list), metadata
{split, language, source, category, task, context, grade, skills[]}``. **The images are not in the GitHub
repository** (they come as ``images.zip`` with the HF dataset AI4Math/MathVista): pass the folder holding them as
the ``image_dir`` loader option (``--option image_dir=DIR``; ``images/<pid>.jpg`` or ``<pid>.jpg`` under it). A
missing image is an error that says how many are missing and where to get them; ``missing_images: text`` evaluates
such items on their text alone (marked ``meta.images_missing``), ``skip`` leaves them out.

The question is the official zero-shot query of ``evaluation/build_query.py`` (shot_type "solution", no caption or
OCR): ``Question: ... (Unit: u)``, ``Choices:`` as ``(A) text``, and the hint naming the answer form (an option
letter, an integer, a float with one or two decimals, a Python list). The gold answer of a multiple-choice item is
the option's text, as in the file; the grader reads letters and option texts alike. A float's ``precision`` gives
the grader an absolute tolerance of half a unit in its last decimal, and ``unit`` is dropped from both answers.

Official metric (``official_metrics``): ``evaluation/calculate_score.py``'s ``normalize_extracted_answer`` applied
to the grader's extracted answer -- multi_choice: a ``(X)`` letter or a bare option letter becomes that option's
text, anything else the option text nearest in Levenshtein distance; integer: ``str(int(float(x)))`` (truncation,
as the official script); float: ``str(round(float(x), precision))``; list: ``str(x)`` -- then exact string
equality with the gold answer (``safe_equal``), and accuracy by ``question_type, answer_type, language, source,
category, task, context, grade, skills`` (an item counts for each of its skills), the script's ``target_keys``.
Departures, both because the official *extraction* is a GPT-4 call we do not make: the grader's extraction stands in
for it (thousands separators, ``$``, ``\\text{}`` and the item's unit are stripped first, as that prompt asks for
the bare value), and a response with no extracted answer is wrong (the script would map an empty extraction to the
nearest option).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from virgo.eval.benchmarks.base import LoadContext
from virgo.eval.sources import LETTERS, DataMissingError, read_rows, require_text, text_or_none
from virgo.records import Problem, RecordError

NAME = "mathvista"
OPTIONS = {"image_dir": None, "missing_images": "error"}
IMAGES_SOURCE = ("images.zip of the HF dataset AI4Math/MathVista (https://huggingface.co/datasets/AI4Math/MathVista); "
                 "unzip it and pass the folder as --option image_dir=FOLDER")
TARGET_KEYS = ("question_type", ("answer_type", "official_answer_type"), "language", "source", "category", "task",
               "context", "grade", "skills")
META_KEYS = ("language", "source", "category", "task", "context", "grade", "skills")


def load(ctx: LoadContext) -> list[Problem]:
    if ctx.options["missing_images"] not in ("error", "text", "skip"):
        raise ValueError("mathvista: missing_images must be error, text or skip")
    path = ctx.locate()
    roots = _image_roots(ctx, path)
    problems, missing = [], []
    for row_no, row in read_rows(path):
        try:
            p = _problem(row, ctx)
        except RecordError as e:
            raise e.located(path, row_no) from None
        rel = text_or_none(row.get("image"))
        if rel:
            found = _find_image(rel, roots)
            if found is None:
                missing.append(rel)
                p.meta["images_missing"] = 1
            else:
                p.images.append(found)
        problems.append(p)
    if missing:
        problems = _handle_missing(ctx, problems, missing, roots)
    return problems


def _image_roots(ctx: LoadContext, path: Path) -> list[Path]:
    roots = []
    if ctx.options["image_dir"]:
        image_dir = Path(ctx.options["image_dir"]).expanduser()
        if not image_dir.is_dir():
            raise DataMissingError(NAME, f"the image folder {str(image_dir)!r} (option image_dir)", [image_dir],
                                   IMAGES_SOURCE)
        roots += [image_dir, image_dir.parent]
    return roots + [path.parent, path.parent.parent, ctx.data_dir]


def _find_image(rel: str, roots: list[Path]) -> str | None:
    for root in roots:
        for cand in (root / rel, root / Path(rel).name):
            if cand.is_file():
                return str(cand.resolve())
    return None


def _handle_missing(ctx: LoadContext, problems: list[Problem], missing: list[str], roots: list[Path]) -> list[Problem]:
    mode = ctx.options["missing_images"]
    what = f"{len(missing)} of {len(problems)} images (e.g. {missing[0]!r})"
    if mode == "error":
        raise DataMissingError(NAME, what + "; the MathVista images are not in its GitHub repository", roots,
                               IMAGES_SOURCE + " (or --option missing_images=text to evaluate those items on their "
                               "text alone)")
    warnings.warn(f"mathvista: {what} not found; {'evaluated on their text alone' if mode == 'text' else 'skipped'} "
                  f"(option missing_images={mode})", stacklevel=3)
    return [p for p in problems if mode == "text" or not p.meta.get("images_missing")]


def build_query(row: dict[str, Any]) -> str:
    """The official zero-shot query (build_query.py, shot_type 'solution', no caption/OCR), without 'Solution:'."""
    question_type, answer_type, precision = row.get("question_type"), row.get("answer_type"), row.get("precision")
    if question_type == "multi_choice":
        hint = "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end."
    elif answer_type == "integer":
        hint = ("Hint: Please answer the question requiring an integer answer and provide the final value, e.g., 1, "
                "2, 3, at the end.")
    elif answer_type == "float" and precision == 1:
        hint = ("Hint: Please answer the question requiring a floating-point number with one decimal place and "
                "provide the final value, e.g., 1.2, 1.3, 1.4, at the end.")
    elif answer_type == "float" and precision == 2:
        hint = ("Hint: Please answer the question requiring a floating-point number with two decimal places and "
                "provide the final value, e.g., 1.23, 1.34, 1.45, at the end.")
    elif answer_type == "list":
        hint = ("Hint: Please answer the question requiring a Python list as an answer and provide the final list, "
                "e.g., [1, 2, 3], [1.2, 1.3, 1.4], at the end.")
    else:
        hint = ""
    text = f"Question: {str(row['question']).strip()}"
    if text_or_none(row.get("unit")):
        text += f" (Unit: {row['unit']})"
    parts = [text]
    if row.get("choices"):
        parts.append("\n".join(["Choices:"] + [f"({LETTERS[i]}) {c}" for i, c in enumerate(row["choices"])]))
    return "\n".join(parts + ([hint] if hint else []))


def _problem(row: dict[str, Any], ctx: LoadContext) -> Problem:
    require_text(row, "question", "answer", "question_type")
    pid = str(row.get("pid") or row["id"])
    choices = [str(c) for c in row.get("choices") or []] or None
    if row["question_type"] == "multi_choice" and not choices:
        raise RecordError("a multi_choice item without choices", field="choices")
    md = row.get("metadata") or {}
    meta: dict[str, Any] = {"question_type": row["question_type"], "official_answer_type": row.get("answer_type"),
                            "precision": row.get("precision"), **{k: md.get(k) for k in META_KEYS}}
    unit = text_or_none(row.get("unit"))
    if unit:
        meta["unit"] = unit
    if row.get("answer_type") == "float" and isinstance(row.get("precision"), (int, float)):
        meta["tolerance"] = 0.5 * 10 ** -int(row["precision"])
    return Problem(id=pid, question=build_query(row), answer=str(row["answer"]).strip(), choices=choices,
                   answer_type="multiple_choice" if choices else str(row.get("answer_type") or "free_form"),
                   meta=meta)


# ----------------------------------------------------------------------------- the official metric

def levenshtein(a: str, b: str) -> int:
    """Edit distance (the official script uses python-Levenshtein's ``distance``; the same number, no dependency)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def normalize_extracted_answer(extraction: Any, choices: list[str] | None, question_type: str,
                               answer_type: str | None, precision: Any) -> str | None:
    """``calculate_score.normalize_extracted_answer``, rule for rule."""
    if question_type == "multi_choice":
        extraction = extraction.strip() if isinstance(extraction, str) else str(extraction)
        letter = re.findall(r"\(([a-zA-Z])\)", extraction)
        if letter:
            extraction = letter[0].upper()
        options = [chr(ord("A") + i) for i in range(len(choices or []))]
        if extraction in options:
            return choices[options.index(extraction)]
        distances = [levenshtein(extraction, c) for c in choices or []]
        return choices[distances.index(min(distances))] if choices else None
    try:
        if answer_type == "integer":
            return str(int(float(extraction)))
        if answer_type == "float":
            return str(round(float(extraction), int(precision)))
    except (TypeError, ValueError, OverflowError):
        return None
    if answer_type == "list":
        return str(extraction)
    return extraction


_TEXT = re.compile(r"\\text\{([^{}]*)\}")


def _clean(extracted: str, unit: str | None) -> str:
    s = _TEXT.sub(r"\1", extracted).replace("$", "").strip()
    if unit and s.endswith(unit):
        s = s[: -len(unit)].strip()
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", s):
        s = s.replace(",", "")
    return s


def official_correct(problem: Problem, extracted: str | None) -> bool:
    if extracted is None:
        return False
    m = problem.meta
    pred = normalize_extracted_answer(_clean(extracted, m.get("unit")), problem.choices, m.get("question_type"),
                                      m.get("official_answer_type"), m.get("precision"))
    return pred == problem.answer


def official_metrics(inp) -> dict[str, Any]:
    from virgo.eval.official import breakdown_tables, summary_table

    correct = {p.id: official_correct(p, inp.extracted(p.id)) for p in inp.problems if p.id in inp.grades}
    n = len(correct)
    return {
        "title": "MathVista (official answer normalisation)",
        "summary": summary_table(NAME, [("accuracy", sum(correct.values()) / n if n else None, "pct"),
                                        ("n", n, "int")]),
        "tables": breakdown_tables(inp.problems, TARGET_KEYS, correct),
        "notes": [("calculate_score.py's normalize_extracted_answer + safe_equal on the grader's extracted answer; "
                  "no extracted answer counts wrong")],
    }
