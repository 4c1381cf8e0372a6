"""LogicVista (Yijia-Xiao/LogicVista): ``data/dataset.json`` + ``data/images/<imagename>``.

Layout: a JSON object id -> ``imagename, question, answer, reasoning, skill[], broad_capability[],
specific_capability[], imagesource, sourcelink`` (the first release spelled the capability field ``capability``).
Every item is multiple choice; the options are in the question text ("Select from A, B, C, and D. (A) 25 lb (B) 30
lb ...") or only in the image ("Select from A-E"), and some answers name several letters ("B, D": all of them, and
only them). The question is kept as written (its options are already in it); the option texts, when the question
spells them all out, become ``choices``, otherwise the letters in play (from the ``(X)`` markers, the "A-E" range
and the answer) become ``(A)``, ``(B)`` ... placeholders, so the grader knows which letters are options (with no
hint at all, the grading profile's letters A-E). An answer
that is not letters (a number) is graded as a free-form answer.

Official metrics (``official_metrics``), after ``eval/extract_accuracy_new.py`` and ``eval/analyze_accuracy.py``:
an answer is right when its set of letters equals the gold set (here: the grader's verdict, which compares letter
sets the same way; the official extraction is a GPT-4 call); accuracy overall, by reasoning skill (inductive,
deductive, numerical, spatial, mechanical; an item counts for each of its skills), by capability as the script
groups it -- "diagram" (a capability containing "diagram"), "ocr" (containing "ocr") and "diagram and ocr" (both)
-- and by specific capability.
"""

from __future__ import annotations

import re
from typing import Any

from virgo.eval.benchmarks.base import LoadContext
from virgo.eval.sources import LETTERS, as_list, read_problems, require_text, resolve_image, text_or_none
from virgo.records import Problem

NAME = "logicvista"
OPTIONS: dict = {}
_MARK = re.compile(r"\(([A-H])\)")
_RANGE = re.compile(r"\b([A-H])\s*-\s*([A-H])\b")
_ANSWER_LETTERS = re.compile(r"^[A-H](\s*,\s*[A-H])*$")
SKILLS = ("inductive", "deductive", "numerical", "spatial", "mechanical")


def parse_choices(question: str) -> list[str]:
    """Option texts after ``(A) ... (B) ...`` markers in letter order ('' where the text is in the image)."""
    marks, want = [], 0
    for m in _MARK.finditer(question):
        if want < len(LETTERS) and m.group(1) == LETTERS[want]:
            marks.append(m)
            want += 1
    return [question[m.end():(marks[i + 1].start() if i + 1 < len(marks) else len(question))].strip(" ,.;\n")
            for i, m in enumerate(marks)]


def _letters_in_play(question: str, texts: list[str], answer: str) -> int | None:
    """How many options the item has: from its (X) markers, an "A-E" range and the answer; None when the text says
    nothing (the options are only in the image: the grading profile's letters apply)."""
    n = len(texts)
    for a, b in _RANGE.findall(question):
        if a == "A":
            n = max(n, LETTERS.index(b) + 1)
    if n == 0 and all(LETTERS.index(x) < 5 for x in re.findall(r"[A-H]", answer)):
        return None
    for letter in re.findall(r"[A-H]", answer):
        n = max(n, LETTERS.index(letter) + 1)
    return n


def load(ctx: LoadContext) -> list[Problem]:
    path = ctx.locate()
    roots = [path.parent / "images", path.parent, ctx.data_dir / "images", ctx.data_dir]
    return read_problems(path, lambda row: _problem(row, roots, ctx))


def _problem(row: dict[str, Any], roots, ctx: LoadContext) -> Problem:
    require_text(row, "id", "question", "answer")
    pid, question, answer = str(row["id"]), str(row["question"]).strip(), str(row["answer"]).strip()
    images = []
    if text_or_none(row.get("imagename")):
        images.append(resolve_image(str(row["imagename"]), roots, benchmark=ctx.spec.name, source=ctx.spec.source,
                                    item=pid))
    broad = [str(c) for c in as_list(row.get("broad_capability", row.get("capability")), field="broad_capability")]
    meta: dict[str, Any] = {
        "skill": [str(s) for s in as_list(row.get("skill"), field="skill")],
        "broad_capability": broad,
        "specific_capability": [str(s) for s in as_list(row.get("specific_capability"), field="specific_capability")],
        "capability_group": _capability_groups(broad),
        "source": row.get("imagesource"),
    }
    if not _ANSWER_LETTERS.match(answer):
        return Problem(id=pid, question=question, answer=answer, images=images, answer_type="free_form", meta=meta)
    texts = parse_choices(question)
    n = _letters_in_play(question, texts, answer)
    if n is None:
        choices = None
    else:
        choices = texts if texts and len(texts) == n and all(texts) else [f"({LETTERS[i]})" for i in range(n)]
    return Problem(id=pid, question=question, answer=answer, images=images, choices=choices,
                   answer_type="multiple_choice", meta=meta)


def _capability_groups(capabilities: list[str]) -> list[str]:
    """analyze_accuracy.py's three capability groups: 'diagram', 'ocr', and 'diagram and ocr' (both)."""
    text = " ".join(capabilities).lower()
    groups = [g for g in ("diagram", "ocr") if g in text]
    return groups + (["diagram and ocr"] if len(groups) == 2 else [])


def official_metrics(inp) -> dict[str, Any]:
    from virgo.eval.official import breakdown_tables, grouped, summary_table

    correct = {p.id: inp.correct(p.id) for p in inp.problems if p.id in inp.grades}
    n = len(correct)
    skills = grouped(inp.problems, "skill", correct)
    caps = grouped(inp.problems, "capability_group", correct)

    def acc(v: list[bool] | None) -> float | None:
        return sum(v) / len(v) if v else None

    return {
        "title": "LogicVista (skills and capabilities)",
        "summary": summary_table(NAME, [("accuracy", acc(list(correct.values())), "pct")]
                                 + [(s, acc(skills.get(s)), "pct") for s in SKILLS]
                                 + [(c, acc(caps.get(c)), "pct") for c in ("diagram", "ocr", "diagram and ocr")]),
        "tables": breakdown_tables(inp.problems, [("reasoning skill", "skill"), ("capability", "capability_group"),
                                                  ("specific capability", "specific_capability")], correct),
        "notes": [f"{n} items; an item counts for each of its skills and capabilities"],
    }
