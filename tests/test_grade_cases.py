"""Case tables for the grader, on real benchmark items from ../shared/data.

Each row of ``tests/data/grade_cases/<benchmark>.jsonl`` names a real item (its gold answer is checked
against the data, so the table cannot drift from it), a prediction (a response text, or
``prediction_from: long_thought`` for the item's real Sky-T1 response), the expected verdict and why.
Optional: ``graded_by`` / ``undecided`` (also checked), ``profile`` (default: the benchmark's),
``finish_reason``, ``overrides`` (profile fields), ``meta`` (problem meta the benchmark data does not carry,
such as ``ordered``). Every grader bug found becomes a row.

Below the tables, sweeps over every item of each benchmark check the rules the tables sample:
gold answers given back are correct, other options and out-of-tolerance values are wrong.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from functools import cache, lru_cache
from pathlib import Path

import pytest

from virgo.grade import get_profile, gradable, grade_text
from virgo.grade.engine import numeric_value
from virgo.grade.equiv import tolerances
from virgo.grade.norm import split_answers
from virgo.records import Problem

CASES = Path(__file__).parent / "data" / "grade_cases"
TABLES = ("mathvision", "mathverse", "olympiadbench", "mmmu", "math500", "physics", "mathvista", "wemath",
          "logicvista", "dynamath")
PROFILE = {"mathvision": "mathvision", "mathverse": "mathverse", "olympiadbench": "olympiadbench", "mmmu": "mmmu",
           "math500": "default", "physics": "olympiadbench", "mathvista": "mathvista", "wemath": "wemath",
           "logicvista": "logicvista", "dynamath": "dynamath"}
# Where each table's items come from ("physics" rows are OlympiadBench physics items, written for issue 17).
SOURCE = {"physics": "olympiadbench"}
LETTERS = "ABCDEFGHIJ"
LONG_THOUGHT = "long_thought/Sky-T1-math-correct-5K-27B__math500.jsonl"


# --- the real items as Problems (the fields the benchmark loaders fill) ----------------------------------

def _mathvision(data: Path) -> dict[str, Problem]:
    out = {}
    for line in (data / "mathvision/data/testmini.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        options = r["options"] or None
        answer = r["answer"].strip()
        mc = bool(options) or (len(answer) == 1 and answer in "ABCDE")  # options drawn in the image
        kind = "multiple_choice" if mc else "free_form"
        out[r["id"]] = Problem(id=r["id"], question=r["question"], answer=answer, choices=options, answer_type=kind,
                               meta={"question_type": kind})
    return out


# MathVerse writes "Choices:" and, on a few items, "Choice:"; options as "A:40°" or "A. True".
_CHOICE_LINE = re.compile(r"^\s*\(?([A-H])\)?\s*[:.：)]\s*(.*?)\s*$")


def _mathverse_choices(question: str) -> list[str] | None:
    m = list(re.finditer(r"Choices?:", question))
    if not m:
        return None
    choices = []
    for line in question[m[-1].end():].splitlines():
        hit = _CHOICE_LINE.match(line)
        if hit:
            choices.append(hit.group(2))
    return choices or None


def _mathverse(data: Path) -> dict[str, Problem]:
    out = {}
    for r in json.loads((data / "mathverse/data/testmini_text_only.json").read_text(encoding="utf-8")):
        mc = r["question_type"] == "multi-choice"
        out[r["sample_index"]] = Problem(
            id=r["sample_index"], question=r["question"], answer=r["answer"].strip(),
            choices=_mathverse_choices(r["question"]) if mc else None,
            answer_type="multiple_choice" if mc else "free_form", meta={"question_type": r["question_type"]})
    return out


def _olympiad_problem(r: dict, prefix: str) -> Problem:
    finals = r["final_answer"]
    finals = ast.literal_eval(finals) if isinstance(finals, str) else finals  # stored as a Python-literal string
    # error / unit are passed as stored, "None" strings included, as the loader passes them.
    meta = {"error": r.get("error"), "unit": r.get("unit"), "label": r.get("label"),
            "is_multiple_answer": str(r["is_multiple_answer"]).strip().lower() == "true",
            "question_type": "theorem-proving" if r.get("label") == "Theorem_Proving" else "open-ended"}
    return Problem(id=f"{prefix}-{r['id']}", question=r["question"], answer=finals[0],
                   answer_type=r.get("answer_type"), meta=meta)


def _olympiadbench(data: Path) -> dict[str, Problem]:
    out = {}
    for line in (data / "olympiadbench/qwen25math_OE_TO_maths_en_COMP/test.jsonl").open(encoding="utf-8"):
        p = _olympiad_problem(json.loads(line), "OE_TO_maths_en_COMP")
        out[p.id] = p
    for name, prefix in (("English_Olympiad_Mathematics.json", "math"), ("English_Olympiad_Physics.json", "physics")):
        for r in json.loads((data / "olympiadbench/feb2024_release" / name).read_text(encoding="utf-8")):
            p = _olympiad_problem(r, prefix)
            out[p.id] = p
    return out


def _mmmu(data: Path) -> dict[str, Problem]:
    out = {}
    for i, line in enumerate((data / "mmmu/mmmu_pro_tool_sample/data.jsonl").open(encoding="utf-8")):
        r = json.loads(line)
        options = r["options"] if isinstance(r["options"], list) else ast.literal_eval(r["options"])
        out[f"tool-{i + 1}"] = Problem(id=f"tool-{i + 1}", question=r["question"], answer=r["answer"],
                                       choices=options, answer_type="multiple_choice",
                                       meta={"question_type": "multiple-choice"})
    for k, v in json.loads((data / "mmmu/answer_dict_val.json").read_text(encoding="utf-8")).items():
        if v["question_type"] != "multiple-choice":  # open answers; a list = any of them (as the loader writes it)
            out[k] = Problem(id=k, question="(open question)", answer=str(v["ground_truth"]), answer_type="free_form",
                             meta={"question_type": v["question_type"]})
    return out


def _math500(data: Path) -> dict[str, Problem]:
    out = {}
    for line in (data / LONG_THOUGHT).open(encoding="utf-8"):
        r = json.loads(line)
        out[str(r["idx"])] = Problem(id=str(r["idx"]), question=r["question"], answer=r["answer"])
    return out


def _mathvista(data: Path) -> dict[str, Problem]:
    """MathVista testmini: a multiple-choice gold is the option's text; a float carries its precision."""
    out = {}
    for pid, r in json.loads((data / "mathvista/data/testmini.json").read_text(encoding="utf-8")).items():
        mc = r["question_type"] == "multi_choice"
        meta = {"question_type": r["question_type"], "precision": r.get("precision"), "unit": r.get("unit") or None}
        out[pid] = Problem(id=pid, question=r["question"], answer=str(r["answer"]),
                           choices=r["choices"] if mc else None,
                           answer_type="multiple_choice" if mc else r["answer_type"], meta=meta)
    return out


def _wemath(data: Path) -> dict[str, Problem]:
    """We-Math testmini: options written "A. 3, 5, 4; B. ..." in one field; the gold is a letter."""
    out = {}
    for r in json.loads((data / "wemath/data/testmini.json").read_text(encoding="utf-8")):
        options = [re.sub(r"^\s*[A-H]\s*[.:]\s*", "", o).strip() for o in r["option"].split(";") if o.strip()]
        out[r["ID"]] = Problem(id=r["ID"], question=r["question"], answer=r["answer"], choices=options,
                               answer_type="multiple_choice", meta={"question_type": "multiple-choice"})
    return out


def _logicvista(data: Path) -> dict[str, Problem]:
    """LogicVista: letter golds; the options are in the question text or the image."""
    out = {}
    for pid, r in json.loads((data / "logicvista/data/dataset.json").read_text(encoding="utf-8")).items():
        out[pid] = Problem(id=pid, question=r["question"], answer=r["answer"], answer_type="multiple_choice",
                           meta={"question_type": "multiple-choice"})
    return out


def _dynamath(data: Path) -> dict[str, Problem]:
    """DynaMath seed questions: float, multiple choice (a letter) or text golds."""
    out = {}
    for pid, r in json.loads((data / "dynamath/dataset/dataset.json").read_text(encoding="utf-8")).items():
        mc = r["answer_type"] == "multiple choice"
        out[pid] = Problem(id=pid, question=r["question"], answer=str(r["answer"]),
                           answer_type="multiple_choice" if mc else r["answer_type"],
                           meta={"question_type": "multiple-choice" if mc else "free-form"})
    return out


@cache
def problems(benchmark: str, data: str) -> dict[str, Problem]:
    benchmark = SOURCE.get(benchmark, benchmark)
    return {"mathvision": _mathvision, "mathverse": _mathverse, "olympiadbench": _olympiadbench, "mmmu": _mmmu,
            "math500": _math500, "mathvista": _mathvista, "wemath": _wemath, "logicvista": _logicvista,
            "dynamath": _dynamath}[benchmark](Path(data))


@lru_cache(maxsize=1)
def long_thought_responses(data: str) -> dict[str, str]:
    return {str(r["idx"]): r["code"][0] for r in map(json.loads, (Path(data) / LONG_THOUGHT).open(encoding="utf-8"))}


# --- the tables -------------------------------------------------------------------------------------------

def _rows():
    for name in TABLES:
        for n, line in enumerate((CASES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                row = json.loads(line)
                yield pytest.param(name, row, id=f"{name}:{n}:{row['item']}:{row['expected']}")


def test_tables_have_rows_for_every_verdict():
    rows = [json.loads(line) for name in TABLES for line in (CASES / f"{name}.jsonl").read_text().splitlines()]
    assert {r["expected"] for r in rows} == {"correct", "wrong", "no_answer", "truncated"}
    assert all(r["why"].strip() for r in rows)


@pytest.mark.parametrize(("benchmark", "row"), list(_rows()))
def test_case_table(shared_data, benchmark, row):
    problem = problems(benchmark, str(shared_data))[row["item"]]
    assert problem.answer == row["gold"], "the table's gold answer must be the data's"
    if "meta" in row:  # a copy: the loaded items are shared between rows
        problem = dataclasses.replace(problem, meta={**problem.meta, **row["meta"]})
    if "prediction_lines" in row:  # a long response, stored one line per list entry for readability
        row = {**row, "prediction": "\n".join(row["prediction_lines"])}
    if row.get("prediction_from") == "long_thought":
        text = long_thought_responses(str(shared_data))[row["item"]]
    else:
        text = row["prediction"]
    profile = get_profile(row.get("profile", PROFILE[benchmark]), **row.get("overrides", {}))
    grade = grade_text(problem, text, profile=profile, finish_reason=row.get("finish_reason", "stop"))
    why = f"{row['why']} | got {grade.verdict} by {grade.graded_by}, extracted {grade.extracted!r}: {grade.detail}"
    assert grade.verdict == row["expected"], why
    if "graded_by" in row:
        assert grade.graded_by == row["graded_by"], why
    if "undecided" in row:
        assert bool(grade.extra.get("undecided")) == row["undecided"], why


# --- sweeps over every item --------------------------------------------------------------------------------

def _verdict(problem: Problem, text: str, profile: str) -> str:
    return grade_text(problem, text, profile=profile).verdict


def test_mathvision_every_item(shared_data):
    """Each multiple-choice item: its letter in three spellings and its option text are correct, every other
    letter and every other option's text wrong. Each free-form item: its gold boxed is correct, altered wrong."""
    failures = []
    for pid, p in problems("mathvision", str(shared_data)).items():
        if p.answer_type == "multiple_choice":
            letters = LETTERS[:len(p.choices)] if p.choices else "ABCDE"
            for letter in letters:
                expected = "correct" if letter == p.answer else "wrong"
                for text in (f"\\boxed{{{letter}}}", f"The answer is ({letter}).", f"**{letter}**"):
                    if _verdict(p, text, "mathvision") != expected:
                        failures.append((pid, text, expected))
            gold_text = p.choices[LETTERS.index(p.answer)] if p.choices else None
            # Options that are letters themselves are read as letters (see the table); texts are checked elsewhere.
            for option in [c for c in p.choices or [] if not re.fullmatch(r"\(?[A-Z]\)?", c)]:
                expected = "correct" if option == gold_text else "wrong"
                if _verdict(p, f"\\boxed{{{option}}}", "mathvision") != expected:
                    failures.append((pid, option, expected))
        else:
            if _verdict(p, f"\\boxed{{{p.answer}}}", "mathvision") != "correct":
                failures.append((pid, p.answer, "correct"))
            if _verdict(p, f"\\boxed{{{p.answer}7}}", "mathvision") != "wrong":
                failures.append((pid, p.answer + "7", "wrong"))
    assert not failures, failures[:20]


def test_mathverse_every_item(shared_data):
    failures = []
    checked = 0
    for pid, p in problems("mathverse", str(shared_data)).items():
        if p.answer_type == "free_form":
            for text in (f"\\boxed{{{p.answer}}}", f"The final answer is {p.answer}"):
                if "\n" not in p.answer and _verdict(p, text, "mathverse") != "correct":
                    failures.append((pid, text))
            continue
        if not p.choices or p.answer not in LETTERS:
            continue  # "C\nD", option-text golds: in the table
        checked += 1
        gold_text = p.choices[LETTERS.index(p.answer)]
        for i, option in enumerate(p.choices):
            expected = "correct" if option == gold_text else "wrong"
            for text in (f"\\boxed{{{LETTERS[i]}}}", f"Answer: {LETTERS[i]}: {option}") + \
                    ((f"\\boxed{{{option}}}",) if option.strip() else ()):
                if _verdict(p, text, "mathverse") != expected:
                    failures.append((pid, text, expected))
    assert checked > 400
    assert not failures, failures[:20]


def test_olympiadbench_every_item(shared_data):
    """Every auto-gradable item (not theorem proofs, not 'Need_human_evaluate'): the final answer boxed is
    correct; with a tolerance, 0.9 x error off is correct and 2.5 x error off is wrong; multiple answers are
    correct in reverse order and wrong with one missing."""
    failures = []
    counts = {"items": 0, "tolerance": 0, "multi": 0}
    for pid, p in problems("olympiadbench", str(shared_data)).items():
        if pid.startswith("OE_TO") or not gradable(p, "olympiadbench") or p.answer_type == "Need_human_evaluate":
            continue  # (the OE_TO file repeats the maths items of the release)
        counts["items"] += 1
        if _verdict(p, f"The final answer is \\boxed{{{p.answer.strip().strip('$')}}}", "olympiadbench") != "correct":
            failures.append((pid, "self"))
        tol = tolerances(p)
        value = numeric_value(p.answer) if tol and tol[0] and not p.meta["is_multiple_answer"] else None
        if value is not None:
            counts["tolerance"] += 1
            for factor, expected in ((0.9, "correct"), (-0.9, "correct"), (2.5, "wrong"), (-2.5, "wrong")):
                pred = repr(value + factor * tol[0])
                if _verdict(p, f"\\boxed{{{pred}}}", "olympiadbench") != expected:
                    failures.append((pid, pred, expected))
        parts = split_answers(p.answer) if p.meta["is_multiple_answer"] else []
        if len(parts) > 1:
            counts["multi"] += 1
            if _verdict(p, f"\\boxed{{{', '.join(reversed(parts))}}}", "olympiadbench") != "correct":
                failures.append((pid, "reversed"))
            if _verdict(p, f"\\boxed{{{', '.join(parts[:-1])}}}", "olympiadbench") != "wrong":
                failures.append((pid, "one missing"))
    assert counts["items"] > 1400 and counts["tolerance"] > 150 and counts["multi"] > 150, counts
    assert not failures, failures[:20]


def test_olympiadbench_theorem_proofs_are_refused(shared_data):
    items = problems("olympiadbench", str(shared_data))
    proof = next(p for p in items.values() if p.meta["label"] == "Theorem_Proving")
    assert not gradable(proof, "olympiadbench")
    with pytest.raises(ValueError, match="theorem-proving"):
        grade_text(proof, "\\boxed{1}", profile="olympiadbench")


def test_mmmu_options_never_guessed(shared_data):
    """Every option of every MMMU item, by letter and by text; a response naming no option is no_answer
    (MMMU's scorer would pick a random option), every time."""
    failures = []
    items = [p for p in problems("mmmu", str(shared_data)).values() if p.choices]
    assert len(items) == 21
    for p in items:
        gold_text = p.choices[LETTERS.index(p.answer)]
        for i, option in enumerate(p.choices):
            expected = "correct" if option == gold_text else "wrong"
            letter = LETTERS[i]
            for text in (f"\\boxed{{{letter}}}", f"The answer is ({letter}) {option}.", f"\\boxed{{{option}}}"):
                if _verdict(p, text, "mmmu") != expected:
                    failures.append((p.id, text, expected))
        for _ in range(3):
            if _verdict(p, "The image does not show enough to decide.", "mmmu") != "no_answer":
                failures.append((p.id, "guessed"))
    assert not failures, failures[:20]
