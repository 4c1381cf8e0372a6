"""We-Math testmini (We-Math/We-Math): ``data/testmini.json`` + ``data/{2steps,3steps}/image/*.png``.

Layout: a JSON list of ``ID, split, knowledge concept, question, option ("A. 3; B. 5; ...; E. No correct answer"),
answer (a letter), image_path (relative to data/), key, question number, knowledge concept description``. A
composite problem is an ``ID`` (``2steps_2``); its sub-problems share that ID and differ in ``key``: ``2steps_1``,
``2steps_2`` (the one-step sub-problems) and ``2steps_multi`` (the whole problem); three-step problems have
``3steps_1..3`` and ``3steps_multi``. The problem id here is ``<ID>-<1|2|3|multi>``. Options are split at each
``; X.`` (letters in order) and shown as ``Choices:``.

Official metrics (``official_metrics``), after ``evaluation/four_dimensional_metrics.py`` and
``evaluation/accuracy.py``: for each composite problem, with s_i = "one-step sub-problem i answered correctly" and
m = "the multi-step problem answered correctly":

=====================================  ===========================  ===================================
dimension                              strict                       loose
=====================================  ===========================  ===================================
IK  insufficient knowledge             (not all s) and not m        same
IG  inadequate generalisation          all s and not m              same
CM  complete mastery                   all s and m                  any s and m
RM  rote memorisation                  (not all s) and m            (no s) and m
=====================================  ===========================  ===================================

IK, IG and CM are rates over the composite problems; RM is RM / (CM + RM); the score is
``(N - 0.5 IG - RM - IK) / N`` with the counts. Accuracy: S1 over the one-step sub-problems, S2 / S3 over the two- /
three-step multi problems. The official script divides by 525 (the testmini's composite problems); here N is the
number of composite problems whose sub-problems were all evaluated (525 on the full testmini); problems with a
sub-problem missing (``--limit``, a sample) are left out and counted in a note. "Answered correctly" is the
grader's verdict (the official script takes the first letter after the last "Answer" in the response).

Accuracy by knowledge domain, after ``evaluation/accuracy.py``: it needs We-Math's knowledge structure,
``data/knowledge_structure_nodes.json`` in the official repository (a JSON list of tree nodes ``root0 .. root4``
and ``full node``, the path joined by ``_``), found beside the split file or given with ``--option
knowledge_structure=PATH``; without it the table is left out and a note says where to put the file. As the script
does: a node's concept is the last part of its ``full node``; a concept's accuracy is the mean over the one-step
sub-problems with that ``knowledge concept`` (of composite problems whose first sub-problem was evaluated); a
domain's (``root2``) accuracy is the mean over its nodes of their concepts' accuracies (a mean of concepts, not of
items; nodes whose concept has no evaluated sub-problem are left out). The loader puts each one-step
sub-problem's domains, one per node of its concept, in ``meta["knowledge_domains"]``.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from virgo.eval.benchmarks.base import LoadContext
from virgo.eval.sources import LETTERS, format_choices, read_problems, require_text, resolve_image, text_or_none
from virgo.records import Problem, RecordError

NAME = "wemath"
OPTIONS: dict = {"knowledge_structure": None}  # None: knowledge_structure_nodes.json beside the split file, if any
KNOWLEDGE_FILE = "knowledge_structure_nodes.json"
_KEY = re.compile(r"^([23])steps_(1|2|3|multi)$")
_OPTION = re.compile(r"(?:^|;)\s*([A-H])\s*\.\s*")


def parse_options(text: str) -> list[str]:
    """``"A. 3, 5; B. 30;C. 4; E. None"`` -> option texts in letter order (a split only where the next letter
    follows, so a ';' inside an option stays)."""
    cuts, want = [], 0
    for m in _OPTION.finditer(text):
        if m.group(1) == LETTERS[want]:
            cuts.append(m)
            want += 1
    out = []
    for i, m in enumerate(cuts):
        end = cuts[i + 1].start() if i + 1 < len(cuts) else len(text)
        out.append(text[m.end():end].strip().rstrip(";").strip())
    return out


def load(ctx: LoadContext) -> list[Problem]:
    path = ctx.locate()
    roots = [path.parent, ctx.data_dir / "data", ctx.data_dir]
    given = ctx.options["knowledge_structure"]
    structure = Path(given) if given else path.parent / KNOWLEDGE_FILE
    domains = None
    if structure.is_file():
        domains = concept_domains(structure)
        ctx.files.append(structure)
    elif given:
        raise FileNotFoundError(f"{ctx.spec.name}: knowledge_structure={given}: no such file (We-Math's "
                                f"data/{KNOWLEDGE_FILE})")
    problems = read_problems(path, lambda row: _problem(row, roots, ctx))
    if domains is not None:
        for p in problems:
            if p.meta["role"] != "multi":  # a multi-step problem lists its sub-problems' concepts, ';'-joined
                p.meta["knowledge_domains"] = domains.get(str(p.meta["knowledge_concept"]), [])
    return problems


def concept_domains(path: Path) -> dict[str, list[str]]:
    """``knowledge_structure_nodes.json`` -> {concept: [its nodes' root2, one per node]}; a node's concept is the
    last ``_``-separated part of its ``full node``, as accuracy.py takes it."""
    out: dict[str, list[str]] = defaultdict(list)
    for concept, domain in read_problems(path, _node):
        out[concept].append(domain)
    return dict(out)


def _node(node: dict[str, Any]) -> tuple[str, str]:
    require_text(node, "full node", "root2")
    return str(node["full node"]).split("_")[-1], str(node["root2"])


def _problem(row: dict[str, Any], roots, ctx: LoadContext) -> Problem:
    require_text(row, "ID", "question", "answer", "key", "option")
    m = _KEY.match(str(row["key"]))
    if not m:
        raise RecordError(f"expected 2steps_1|2|multi or 3steps_1|2|3|multi, got {row['key']!r}", field="key")
    steps, role = int(m.group(1)), m.group(2)
    choices = parse_options(str(row["option"]))
    if len(choices) < 2:
        raise RecordError("could not read the options (expected 'A. ...; B. ...')", field="option")
    pid = f"{row['ID']}-{role}"
    images = []
    if text_or_none(row.get("image_path")):
        images.append(resolve_image(str(row["image_path"]), roots, benchmark=ctx.spec.name, source=ctx.spec.source,
                                    item=pid))
    meta = {"wemath_id": str(row["ID"]), "key": str(row["key"]), "steps": steps, "role": role,
            "knowledge_concept": row.get("knowledge concept"), "question_number": row.get("question number")}
    return Problem(id=pid, question=f"{str(row['question']).strip()}\n{format_choices(choices)}",
                   answer=str(row["answer"]).strip(), images=images, choices=choices, answer_type="multiple_choice",
                   meta=meta)


# ----------------------------------------------------------------------------- the official metrics

def four_dimensions(groups: list[tuple[list[bool], bool]]) -> dict[str, Any]:
    """Counts, rates and scores of four_dimensional_metrics.py over (one-step results, multi-step result) pairs."""
    c = {"IK": 0, "IG": 0, "CM_strict": 0, "CM_loose": 0, "RM_strict": 0, "RM_loose": 0}
    for steps, multi in groups:
        c["IK"] += (not all(steps)) and not multi
        c["IG"] += all(steps) and not multi
        c["CM_strict"] += all(steps) and multi
        c["CM_loose"] += any(steps) and multi
        c["RM_strict"] += (not all(steps)) and multi
        c["RM_loose"] += (not any(steps)) and multi
    n = len(groups)

    def rate(x: int, total: int) -> float | None:
        return x / total if total else None

    out: dict[str, Any] = {"n": n, "counts": c}
    for form in ("strict", "loose"):
        cm, rm = c[f"CM_{form}"], c[f"RM_{form}"]
        out[form] = {"IK": rate(c["IK"], n), "IG": rate(c["IG"], n), "CM": rate(cm, n), "RM": rate(rm, cm + rm),
                     "score": rate(n - 0.5 * c["IG"] - rm - c["IK"], n)}
    return out


# accuracy.py's column order for the domains (root2); a structure file with others lists them after these
DOMAINS = ("Understanding and Conversion of Units", "Angles and Length", "Calculation of Plane Figures",
           "Understanding of Plane Figures", "Calculation of Solid Figures", "Understanding of Solid Figures",
           "Basic Transformations of Figures", "Cutting and Combining of Figures", "Direction", "Position",
           "Route Map", "Correspondence of Coordinates and Positions")


def domain_accuracy(inp, evaluated: dict[tuple[int, str], dict[str, bool]]) -> list[list[Any]] | None:
    """Rows ``[domain, concepts, sub-problems, accuracy]`` as accuracy.py computes them (module docstring); None
    when the problems carry no domains (no knowledge structure was loaded)."""
    if not any("knowledge_domains" in p.meta for p in inp.problems):
        return None
    by_concept: dict[str, list[bool]] = defaultdict(list)
    nodes: dict[str, dict[str, int]] = defaultdict(dict)  # domain -> {concept: its nodes in that domain}
    for p in inp.problems:
        roles = evaluated.get((p.meta["steps"], p.meta["wemath_id"]), {})
        if p.meta["role"] == "multi" or p.id not in inp.grades or "1" not in roles:
            continue
        concept = str(p.meta["knowledge_concept"])
        by_concept[concept].append(inp.correct(p.id))
        for domain, count in Counter(p.meta.get("knowledge_domains", [])).items():
            nodes[domain][concept] = count
    rows = []
    for domain in sorted(nodes, key=lambda d: (DOMAINS.index(d) if d in DOMAINS else len(DOMAINS), d)):
        weights = nodes[domain]
        acc = sum(w * sum(by_concept[c]) / len(by_concept[c]) for c, w in weights.items()) / sum(weights.values())
        rows.append([domain, len(weights), sum(len(by_concept[c]) for c in weights), acc])
    return rows


def official_metrics(inp) -> dict[str, Any]:
    from virgo.eval.official import ACCURACY_COLUMNS, accuracy_rows, summary_table

    members: dict[tuple[int, str], dict[str, bool]] = defaultdict(dict)
    for p in inp.problems:
        if p.id in inp.grades:
            members[(p.meta["steps"], p.meta["wemath_id"])][p.meta["role"]] = inp.correct(p.id)
    complete = [(steps, roles) for (steps, _), roles in sorted(members.items())
                if set(roles) == {str(i) for i in range(1, steps + 1)} | {"multi"}]
    d = four_dimensions([([roles[str(i)] for i in range(1, steps + 1)], roles["multi"]) for steps, roles in complete])
    one_step = [ok for roles in members.values() for role, ok in roles.items() if role != "multi"]
    multi = {s: [roles["multi"] for (steps, _), roles in members.items() if steps == s and "multi" in roles]
             for s in (2, 3)}
    acc = {"S1 (one-step)": one_step, "S2 (two-step)": multi[2], "S3 (three-step)": multi[3]}
    c = d["counts"]
    rows = [[name, c[key], d["strict"][dim], c[key_loose], d["loose"][dim]]
            for name, key, key_loose, dim in (("IK insufficient knowledge", "IK", "IK", "IK"),
                                              ("IG inadequate generalisation", "IG", "IG", "IG"),
                                              ("CM complete mastery", "CM_strict", "CM_loose", "CM"),
                                              ("RM rote memorisation", "RM_strict", "RM_loose", "RM"))]
    rows.append(["score", None, d["strict"]["score"], None, d["loose"]["score"]])

    def mean(v: list[bool]) -> float | None:
        return sum(v) / len(v) if v else None

    domains = domain_accuracy(inp, members)
    domain_tables = [] if domains is None else [
        {"title": "accuracy by knowledge domain (mean over the domain's concepts)",
         "columns": ["", "concepts", "one-step sub-problems", "accuracy %"],
         "formats": ["text", "int", "int", "pct"], "rows": domains}]
    domain_notes = [] if domains is not None else [
        (f"accuracy by knowledge domain: needs We-Math's data/{KNOWLEDGE_FILE} beside the split file "
         "or --option knowledge_structure=PATH")]
    return {
        "title": "We-Math (four-dimensional metrics)",
        "summary": summary_table(NAME, [
            ("score (strict)", d["strict"]["score"], "pct"), ("score (loose)", d["loose"]["score"], "pct"),
            ("IK", d["strict"]["IK"], "pct"), ("IG", d["strict"]["IG"], "pct"),
            ("CM (strict)", d["strict"]["CM"], "pct"), ("RM (strict)", d["strict"]["RM"], "pct"),
            ("CM (loose)", d["loose"]["CM"], "pct"), ("RM (loose)", d["loose"]["RM"], "pct"),
            ("S1", mean(one_step), "pct"), ("S2", mean(multi[2]), "pct"), ("S3", mean(multi[3]), "pct")]),
        "tables": [
            {"title": "four dimensions", "columns": ["", "count (strict)", "rate % (strict)", "count (loose)",
                                                     "rate % (loose)"],
             "formats": ["text", "int", "pct", "int", "pct"], "rows": rows},
            {"title": "accuracy by number of steps", **ACCURACY_COLUMNS, "rows": accuracy_rows(acc)},
            *domain_tables,
        ],
        "notes": [(f"{d['n']} composite problems with every sub-problem evaluated (525 on the full testmini); "
                   f"{len(members) - d['n']} incomplete left out of the four dimensions"),
                  "RM rates are RM / (CM + RM); IK, IG, CM rates are over the composite problems", *domain_notes],
    }
