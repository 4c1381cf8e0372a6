"""The page's data, built from one or two runs: a small index the page parses at once, and the long texts in chunks
it parses only when an item in them is opened (or searched).

Items are (set, problem id, sample) keys; with two runs, each key joins the two runs' generations and grades, and a
key only one run has shows the other side as missing. Thought and solution come from the `Generation` records
(split by `virgo.thought.parse_response` at generation time); marks from `virgo.view.marks`.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from virgo.data.analytics import APPROX_LABEL, REFLECTION_LEXICON, token_lengths
from virgo.infer.budget import WAIT_TEXT
from virgo.records import Generation, Grade, Problem
from virgo.view.marks import thought_marks
from virgo.view.sources import Key, RunData

CHUNK_CHARS = 800_000  # text per chunk, about: opening an item parses its whole chunk (in a few tens of ms)
CHUNK_ITEMS = (10, 500)  # fewest and most items per chunk
MAX_INDEX_TEXT = 300  # characters of an extracted answer kept in the index (the full one is in the chunk)
LEVEL_KEYS = ("level", "topic_difficulty", "difficulty")
SUBSET_KEYS = ("subset", "problem_version")


@dataclass
class ViewData:
    index: dict[str, Any]
    chunks: list[list[Any]]
    images: list[str] = field(default_factory=list)  # image paths, by the image number the problems use


def _meta_value(p: Problem | None, keys: tuple[str, ...]) -> str:
    if p is None:
        return ""
    for k in keys:
        v = p.meta.get(k)
        if v not in (None, ""):
            return str(v)
    return ""


def _lengths(run: RunData) -> tuple[dict[Key, int], str]:
    """Thought length of each generation with a thought, and its unit: model tokens when the run recorded them for
    every thought, else the approximate count of `virgo.data.analytics` (never a mix of the two)."""
    thinking = [(s, g) for s, g in run.generations if g.thought is not None]
    if all(g.thought_tokens is not None for _, g in thinking):
        return {(s, g.id, g.sample): int(g.thought_tokens) for s, g in thinking}, "tokens"
    counts = token_lengths([g.thought or "" for _, g in thinking])
    return {(s, g.id, g.sample): n for (s, g), n in zip(thinking, counts)}, APPROX_LABEL


def _entry(gen: Generation, grade: Grade | None, length: int | None, reflections: int) -> dict[str, Any]:
    """A run's side of an item in the index: what the list shows, filters and sorts on."""
    extra = gen.extra or {}
    x = grade.extracted if grade is not None else None
    return {
        "v": grade.verdict if grade is not None else "ungraded",
        "b": grade.graded_by if grade is not None else "",
        "e": (grade.extracted_by or "") if grade is not None else "",
        "x": x[:MAX_INDEX_TEXT] if x is not None else None,
        "n": length,
        "st": gen.status or "",
        "f": gen.finish_reason,
        "bf": int(extra.get("budget_forced") is True),
        "w": extra.get("waits") if isinstance(extra.get("waits"), int) else 0,
        "rc": reflections,
    }


def _texts(gen: Generation, grade: Grade | None) -> dict[str, Any]:
    """A run's side of an item in its text chunk: thought, solution, the raw text when it says more, marks."""
    raw = gen.text if gen.solution is None and gen.status != "truncated" else None
    out: dict[str, Any] = {"t": gen.thought, "s": gen.solution, "raw": raw, **thought_marks(gen)}
    if grade is not None:
        out.update(x=grade.extracted, d=grade.detail, gold=grade.gold)
    return out


def _problem_row(key: tuple[str, str], p: Problem | None, images: dict[str, int], info: dict[str, Any]) -> dict:
    set_name, pid = key
    subset = set_name or _meta_value(p, SUBSET_KEYS) or str(info.get("split") or info.get("benchmark") or "")
    row: dict[str, Any] = {"id": pid, "set": set_name, "sub": subset, "lvl": _meta_value(p, LEVEL_KEYS),
                           "subj": _meta_value(p, ("subject",)), "q": None, "gold": None, "ch": None, "img": []}
    if p is not None:
        row.update(q=p.question, gold=p.answer, ch=p.choices, type=p.answer_type or "")
        for path in p.images:
            row["img"].append(images.setdefault(path, len(images)))
    return row


def _run_meta(run: RunData, unit: str) -> dict[str, Any]:
    info = run.info
    acc = run.accuracy.get("") if "" in run.accuracy else None
    return {"label": run.label, "path": str(run.path), "benchmark": info.get("benchmark"),
            "split": info.get("split"), "model": info.get("model"), "unit": unit, "accuracy": acc,
            "acc_by_set": {k: v for k, v in run.accuracy.items() if k}, "n": len(run.generations)}


def _chunk_size(texts: list[list]) -> int:
    """Items per chunk, so that a chunk holds about ``CHUNK_CHARS`` of text (long thoughts: fewer items)."""
    chars = sum(len(t.get(k) or "") for sides in texts for t in sides if t for k in ("t", "s", "raw"))
    per_item = chars / max(1, len(texts))
    return int(min(CHUNK_ITEMS[1], max(CHUNK_ITEMS[0], CHUNK_CHARS / max(per_item, 1.0))))


def build_view_data(runs: list[RunData], title: str | None = None) -> ViewData:
    """The index and text chunks of the page for one or two runs."""
    keys: dict[Key, None] = {}
    gens: list[dict[Key, Generation]] = []
    lengths, units = [], []
    for run in runs:
        by_key = {}
        for s, g in run.generations:
            by_key.setdefault((s, g.id, g.sample), g)
        gens.append(by_key)
        # The benchmark's order (problems file, then sample), not the order generations finished in.
        pos = {k: i for i, k in enumerate(run.problems)}
        keys.update(dict.fromkeys(sorted(by_key, key=lambda k: (pos.get(k[:2], len(pos)), k[2]))))
        n, unit = _lengths(run)
        lengths.append(n)
        units.append(unit)
    images: dict[str, int] = {}
    problem_rows: list[dict] = []
    problem_at: dict[tuple[str, str], int] = {}
    items: list[dict] = []
    all_texts: list[list] = []
    for key in keys:
        pkey = key[:2]
        if pkey not in problem_at:
            p = next((r.problems[pkey] for r in runs if pkey in r.problems), None)
            info = next((r.info for r in runs if pkey in r.problems), runs[0].info)
            problem_at[pkey] = len(problem_rows)
            problem_rows.append(_problem_row(pkey, p, images, info))
        sides, texts = [], []
        for run, by_key, n in zip(runs, gens, lengths):
            g = by_key.get(key)
            grade = run.grades.get(key)
            t = _texts(g, grade) if g is not None else None
            sides.append(_entry(g, grade, n.get(key), len(t["r"])) if t is not None else None)
            texts.append(t)
        items.append({"p": problem_at[pkey], "s": key[2], "r": sides})
        all_texts.append(texts)
    size = _chunk_size(all_texts)
    chunks = [all_texts[i:i + size] for i in range(0, len(all_texts), size)]
    meta = {
        "title": title or " vs ".join(r.label for r in runs),
        "runs": [_run_meta(r, u) for r, u in zip(runs, units)],
        "chunk": size, "wait": WAIT_TEXT, "lexicon": list(REFLECTION_LEXICON),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "samples": max((k[2] for k in keys), default=0) + 1,
    }
    return ViewData({"meta": meta, "problems": problem_rows, "items": items}, chunks, list(images))
