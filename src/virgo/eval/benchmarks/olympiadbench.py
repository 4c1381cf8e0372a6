"""OlympiadBench (OpenBMB/OlympiadBench; HF Hothan/OlympiadBench), two field layouts.

* **Subset files** (HF-style): one file per subset named ``{OE,TP}_{MM,TO}_{maths,physics}_{en,zh}_{COMP,CEE}``
  (``OlympiadBench/<subset>/<subset>.parquet`` on HF, ``<subset>.json`` in the March-2024 release,
  ``<dir containing the subset name>/test.jsonl`` in the Qwen2.5-Math copy). Fields ``id, question,
  context, final_answer[], is_multiple_answer, unit, answer_type, error, subfield`` and, in the full
  HF files, ``question_type, modality, subject, language, image_1..image_9``. Where a field is absent
  it is read from the subset name. List fields may be Python-literal strings (parsed with
  ``ast.literal_eval`` only).
* **Original release** (Feb 2024 ``data.zip``): ``{English,Chinese}_*_{Mathematics,Physics}.json``
  with ``label`` (``Open-ended_Questions`` / ``Theorem_Proving``), ``classification``,
  ``support_auto_scoring``; figures are markdown links to an image host. Those links cannot be
  followed offline: the item is kept as text (``[figure omitted]``), its URLs go to
  ``meta.image_urls`` and ``meta.images_missing`` counts them (``skip_missing_images: true`` drops it).

Theorem-proving items are excluded by default (as the paper did). ``answer`` is ``final_answer[0]``
(what the official judge compares); every listed final answer is kept in ``meta.final_answers``, and
``accept_all_final_answers: true`` lets the grader accept any of them (``meta.alternatives``; more
lenient than the official judge). Grader keys: ``error`` (tolerance), ``unit``, ``is_multiple_answer``.
Images: ``<image_N>`` placeholders map to ``image_N`` cells (bytes are written to a cache once) or
paths; ``<img_N>`` placeholders to ``images/img_N.jpg``.
"""

from __future__ import annotations

import re
from pathlib import Path

from virgo.eval.benchmarks.base import LoadContext
from virgo.eval.sources import (
    DataMissingError,
    as_list,
    image_cache_dir,
    image_label,
    materialize_image,
    read_rows,
    resolve_image,
    text_or_none,
)
from virgo.records import Problem, RecordError

NAME = "olympiadbench"
OPTIONS = {"include_theorem_proving": False, "skip_missing_images": False, "accept_all_final_answers": False}

SUBSET_RE = re.compile(r"(OE|TP)_(MM|TO)_(maths|physics)_(en|zh)_(COMP|CEE)")
ORIGINAL_RE = re.compile(r"^(English|Chinese)_.*_(Mathematics|Physics)$")
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)[^)]*\)")
_IMG_N = re.compile(r"<img_(\d+)>")
_IMAGE_N = re.compile(r"<image_(\d+)>")
_SUFFIXES = (".json", ".jsonl", ".parquet")


def discover(data_dir: Path) -> tuple[list[tuple[Path, str]], list[Path]]:
    """(subset files with their subset code, original-release files) under ``data_dir``."""
    subset_files, original = [], []
    for p in sorted(Path(data_dir).rglob("*")):
        if p.suffix not in _SUFFIXES or any(part.startswith(".") for part in p.relative_to(data_dir).parts):
            continue
        m = SUBSET_RE.search(p.stem) or SUBSET_RE.search(p.parent.name)
        if m:
            subset_files.append((p, m.group(0)))
        elif p.suffix == ".json" and ORIGINAL_RE.match(p.stem):
            original.append(p)
    return subset_files, original


def load(ctx: LoadContext) -> list[Problem]:
    subset_files, original = discover(ctx.data_dir)
    if not subset_files and not original:
        raise DataMissingError(
            ctx.spec.name, "OlympiadBench files (<subset>.json|.jsonl|.parquet named like OE_TO_maths_en_COMP, "
            "or the original English_Olympiad_Mathematics.json)", [ctx.data_dir], ctx.spec.source)
    if subset_files and original:
        raise ValueError(
            f"olympiadbench: {ctx.data_dir} holds both the subset layout ({subset_files[0][0]}) and the original "
            f"release ({original[0]}); point --data-dir at one of them")
    problems: list[Problem] = []
    sources = [(p, code) for p, code in subset_files] + [(p, None) for p in original]
    for path, code in sources:
        ctx.files.append(path)
        for row_no, row in read_rows(path):
            try:
                p = _problem(row, path, code, ctx)
            except RecordError as e:
                raise e.located(path, row_no) from None
            if p is not None:
                problems.append(p)
    return problems


def _flag(value) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1", "yes")


def _problem(row: dict, path: Path, code: str | None, ctx: LoadContext) -> Problem | None:
    if text_or_none(row.get("id")) is None:
        raise RecordError("missing", field="id")
    if text_or_none(row.get("question")) is None:
        raise RecordError("missing or empty", field="question")
    raw_id = str(row["id"])
    pid = f"{code or path.stem}-{raw_id}"

    # What kind of item: from fields where present, else from the subset code / file name.
    if code:
        qt, mm, subj, lang, src = SUBSET_RE.fullmatch(code).groups()
    else:
        qt = mm = src = None
        m = ORIGINAL_RE.match(path.stem)
        lang, subj = (("en" if m.group(1) == "English" else "zh"),
                      ("maths" if m.group(2) == "Mathematics" else "physics"))
    theorem = (str(row.get("question_type", "")).lower().startswith("theorem") or row.get("label") == "Theorem_Proving"
               or qt == "TP")
    if theorem and not ctx.options["include_theorem_proving"]:
        return None
    if row.get("subject"):
        subj = "maths" if str(row["subject"]).lower().startswith("math") else "physics"
    if row.get("language"):
        lang = "zh" if str(row["language"]).lower().startswith("chin") else "en"

    question = str(row["question"]).strip()
    context = text_or_none(row.get("context"))
    if context:
        question = f"{context}\n{question}"
    question, images, urls = _images(question, row, path, pid, ctx)
    if urls and ctx.options["skip_missing_images"]:
        return None
    if row.get("modality"):
        modality = "multimodal" if str(row["modality"]).lower().startswith("multi") else "text-only"
    elif mm:
        modality = "multimodal" if mm == "MM" else "text-only"
    else:
        modality = "multimodal" if (images or urls) else "text-only"

    finals = [str(a) for a in as_list(row.get("final_answer"), field="final_answer")]
    if not finals and not theorem:
        raise RecordError("no final answer", field="final_answer")
    meta = {
        "subject": subj,
        "language": lang,
        "modality": modality,
        "question_type": "theorem-proving" if theorem else "open-ended",
        "subfield": row.get("subfield"),
        "answer_type": row.get("answer_type"),
        "is_multiple_answer": _flag(row.get("is_multiple_answer")),
        "unit": text_or_none(row.get("unit")),
        "error": text_or_none(row.get("error")),
        "final_answers": finals,
        "source_id": raw_id,
    }
    if ctx.options["accept_all_final_answers"] and len(finals) > 1:
        meta["alternatives"] = finals
    if code:
        meta["subset"] = code
        meta["exam"] = src
    if "support_auto_scoring" in row:
        meta["auto_scoring"] = _flag(row["support_auto_scoring"])
    if row.get("source"):
        meta["source"] = row["source"]
    if urls:
        meta["image_urls"] = urls
        meta["images_missing"] = len(urls)
    return Problem(id=pid, question=question, answer=finals[0] if finals else "", images=images,
                   answer_type=str(row.get("answer_type") or "") or None, meta=meta)


def _images(question: str, row: dict, path: Path, pid: str, ctx: LoadContext) -> tuple[str, list[str], list[str]]:
    """Images of one item, in order of their placeholders, with the placeholders rewritten."""
    images: list[str] = []
    mapping: dict[int, int] = {}
    # HF layout: <image_N> placeholders and image_N cells (bytes) or paths.
    cells = {int(k.split("_")[1]): v for k, v in row.items() if re.fullmatch(r"image_\d+", k) and v}
    for n in sorted(cells):
        cell = cells[n]
        if isinstance(cell, dict):
            img = materialize_image(cell, image_cache_dir(ctx.data_dir, ctx.spec.name), f"{pid}-image_{n}")
        else:
            img = resolve_image(str(cell), [path.parent, path.parent.parent], benchmark=ctx.spec.name,
                                source=ctx.spec.source, item=pid)
        if img:
            images.append(img)
            mapping[n] = len(images)
    question = _IMAGE_N.sub(lambda m: image_label(mapping.get(int(m.group(1)), int(m.group(1)))), question)

    # March-2024 release: <img_N> placeholders, files images/img_N.jpg next to the data folder.
    def img_sub(m: re.Match) -> str:
        images.append(resolve_image(f"img_{m.group(1)}.jpg", [path.parent.parent / "images", path.parent / "images"],
                                    benchmark=ctx.spec.name, source=ctx.spec.source, item=pid))
        return image_label(len(images))

    question = _IMG_N.sub(img_sub, question)
    # Original release: markdown links to an unreachable image host.
    urls = _MD_IMAGE.findall(question)
    question = _MD_IMAGE.sub("[figure omitted]", question).strip()
    return question, images, urls
