"""The five added benchmarks: loaders on the real samples (official layouts) and on made full-layout fixtures, and
each benchmark's official metrics against numbers worked out by hand. No model runs here (see
test_eval_benchmarks_e2e.py)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from virgo.eval.benchmarks import dynamath, logicvista, mathvista, mmmu_pro, wemath
from virgo.eval.official import OfficialInput, average
from virgo.eval.registry import get_benchmark, list_benchmarks, loader_names
from virgo.eval.sources import DataMissingError
from virgo.records import Grade, Problem, RecordError

NEW = ("mathvista", "wemath", "logicvista", "dynamath", "mmmu_pro")


def _inp(problems, correct: dict[str, bool], extracted: dict[str, str | None] | None = None) -> OfficialInput:
    grades = {pid: Grade(id=pid, sample=0, verdict="correct" if ok else "wrong",
                         extracted=(extracted or {}).get(pid, "x"), graded_by="test") for pid, ok in correct.items()}
    return OfficialInput(list(problems), grades, {})


def test_registered_with_loaders_and_metrics_hooks():
    assert set(NEW) <= set(list_benchmarks()) and set(NEW) <= set(loader_names())
    for name in NEW:
        assert get_benchmark(name).metrics == name


def test_registry_and_loaders_do_not_import_each_other():
    """Importing a loader does not import the registry, and importing the registry imports no loader."""
    code = ("import sys, virgo.eval.benchmarks.wemath as w, virgo.eval.benchmarks.mathvision;"
            "print('virgo.eval.registry' in sys.modules);"
            "import virgo.eval.registry;"
            "print(sorted(m for m in sys.modules if m.startswith('virgo.eval.benchmarks.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "False"
    code2 = ("import sys, virgo.eval.registry;"
             "print(sorted(m for m in sys.modules if m.startswith('virgo.eval.benchmarks.')))")
    out2 = subprocess.run([sys.executable, "-c", code2], capture_output=True, text=True, check=True).stdout.strip()
    assert out2 == "['virgo.eval.benchmarks.base']"


# ----------------------------------------------------------------------------- MathVista

def test_mathvista_says_clearly_that_images_are_missing(shared_data):
    with pytest.raises(DataMissingError) as e:
        get_benchmark("mathvista").load(shared_data / "mathvista")
    msg = str(e.value)
    assert "40 of 40 images" in msg and "images/" in msg and "not in its GitHub repository" in msg
    assert "AI4Math/MathVista" in msg and "image_dir" in msg


def test_mathvista_loader_with_an_image_folder(shared_data, tmp_path):
    raw = json.loads((shared_data / "mathvista" / "data" / "testmini.json").read_text())
    (tmp_path / "images").mkdir()
    for row in raw.values():
        Image.new("RGB", (8, 8)).save(tmp_path / row["image"])
    problems = get_benchmark("mathvista").load(shared_data / "mathvista", image_dir=str(tmp_path / "images"))
    assert len(problems) == 40 and all(len(p.images) == 1 for p in problems)
    by_id = {p.id: p for p in problems}
    assert by_id["121"].question.startswith("Question: In trying to calculate")
    assert by_id["121"].question.endswith("provide the final value, e.g., 1, 2, 3, at the end.")
    mc = by_id["142"]
    assert mc.choices == ["Yes", "No"] and mc.answer == "No" and "Choices:\n(A) Yes\n(B) No" in mc.question
    flt = by_id["252"]
    assert flt.meta["precision"] == 2 and flt.meta["tolerance"] == pytest.approx(0.005)
    assert by_id["945"].meta["unit"] == "years" and "(Unit: years)" in by_id["945"].question
    text_only = get_benchmark("mathvista").load(shared_data / "mathvista", missing_images="text")
    assert all(p.meta.get("images_missing") for p in text_only)
    assert get_benchmark("mathvista").load(shared_data / "mathvista", missing_images="skip") == []


@pytest.mark.parametrize("extraction,choices,qtype,atype,precision,expected", [
    ("(B) No", ["Yes", "No"], "multi_choice", "text", None, "No"),          # a (X) letter
    ("B", ["Yes", "No"], "multi_choice", "text", None, "No"),               # a bare letter
    ("yes", ["Yes", "No"], "multi_choice", "text", None, "Yes"),            # nearest option text
    ("6.7", None, "free_form", "integer", None, "6"),                       # int(float(x)): truncation
    ("0.734", None, "free_form", "float", 2, "0.73"),
    ("1.25", None, "free_form", "float", 1, "1.2"),                         # Python's round: half to even
    ("abc", None, "free_form", "integer", None, None),
    ("[1, 2]", None, "free_form", "list", None, "[1, 2]"),
])
def test_mathvista_official_normalisation(extraction, choices, qtype, atype, precision, expected):
    assert mathvista.normalize_extracted_answer(extraction, choices, qtype, atype, precision) == expected


def test_mathvista_official_metrics_by_hand(shared_data):
    problems = get_benchmark("mathvista").load(shared_data / "mathvista", missing_images="text")
    by_id = {p.id: p for p in problems}
    # 121 (integer 5): "5.9" -> "5" right by the official rule; 252 (float, 2 decimals, 0.73): "0.7312" right;
    # 142 (options Yes/No, gold No): "(A)" -> Yes, wrong; 945 (integer 6, unit years): "6 years" -> 6, right.
    extracted = {"121": "5.9", "252": "0.7312", "142": "(A)", "945": "6 years"}
    chosen = [by_id[k] for k in extracted]
    out = mathvista.official_metrics(_inp(chosen, {k: False for k in extracted}, extracted))
    summary = {s["name"]: s["value"] for s in out["summary"]}
    assert summary == {"accuracy": 0.75, "n": 4}
    qt = next(t for t in out["tables"] if t["title"] == "accuracy by question_type")
    assert qt["rows"] == [["free_form", 3, 3, 1.0], ["multi_choice", 1, 0, 0.0]]
    skills = next(t for t in out["tables"] if t["title"] == "accuracy by skills")
    assert all(row[1] >= 1 for row in skills["rows"])  # an item counts under each of its skills


# ----------------------------------------------------------------------------- We-Math

def test_wemath_options_and_ids(shared_data):
    assert wemath.parse_options("A. 4 ;B. 3 ;C. 2 ;D. 1; E. No correct answer") == ["4", "3", "2", "1",
                                                                                     "No correct answer"]
    assert wemath.parse_options("A. 3, 5; 4; B. 30") == ["3, 5; 4", "30"]  # a ';' inside an option stays
    problems = get_benchmark("wemath").load(shared_data / "wemath")
    assert len(problems) == 40 and len({p.id for p in problems}) == 40
    p = next(p for p in problems if p.id == "2steps_2-1")
    assert p.meta["wemath_id"] == "2steps_2" and p.meta["role"] == "1" and p.meta["steps"] == 2
    assert p.images[0].endswith("2steps/image/2-1.png") and p.choices[0] == "3, 5, 4" and p.answer == "A"


def _wemath_problem(gid: str, steps: int, role: str) -> Problem:
    return Problem(id=f"{gid}-{role}", question="q", answer="A", choices=["a", "b"], answer_type="multiple_choice",
                   meta={"wemath_id": gid, "steps": steps, "role": role, "key": f"{steps}steps_{role}"})


def test_wemath_four_dimensions_by_hand():
    """Five composite problems (one-step results, multi result):
    g1 (T,T | T) CM both; g2 (T,F | T) RM strict, CM loose; g3 (F,F | T) RM both; g4 (T,T | F) IG; g5 (T,F,F | F) IK.
    Strict: IK 1, IG 1, CM 1, RM 2 -> score (5 - 0.5 - 2 - 1) / 5 = 0.3; RM rate 2 / 3.
    Loose: CM 2 (g1, g2), RM 1 (g3) -> score (5 - 0.5 - 1 - 1) / 5 = 0.5; RM rate 1 / 3.
    An incomplete group (g6: no multi) is left out."""
    spec = {"g1": (2, [True, True], True), "g2": (2, [True, False], True), "g3": (2, [False, False], True),
            "g4": (2, [True, True], False), "g5": (3, [True, False, False], False)}
    problems, correct = [], {}
    for gid, (steps, ones, multi) in spec.items():
        for i, ok in enumerate(ones, start=1):
            problems.append(_wemath_problem(gid, steps, str(i)))
            correct[f"{gid}-{i}"] = ok
        problems.append(_wemath_problem(gid, steps, "multi"))
        correct[f"{gid}-multi"] = multi
    problems.append(_wemath_problem("g6", 2, "1"))
    correct["g6-1"] = True
    out = wemath.official_metrics(_inp(problems, correct))
    s = {x["name"]: x["value"] for x in out["summary"]}
    assert s["score (strict)"] == pytest.approx(0.3) and s["score (loose)"] == pytest.approx(0.5)
    assert (s["IK"], s["IG"], s["CM (strict)"], s["CM (loose)"]) == (0.2, 0.2, 0.2, 0.4)
    assert s["RM (strict)"] == pytest.approx(2 / 3) and s["RM (loose)"] == pytest.approx(1 / 3)
    # S1 over all one-step sub-problems present (12: 11 in groups + g6's), S2 over the 4 two-step multis.
    assert s["S1"] == pytest.approx(7 / 12) and s["S2"] == pytest.approx(3 / 4) and s["S3"] == 0.0
    assert "5 composite problems" in out["notes"][0] and "1 incomplete" in out["notes"][0]


def _knowledge_file(path, nodes: list[tuple[str, str]]):
    """We-Math's knowledge_structure_nodes.json layout: (domain, concept) -> a node whose full node ends in it."""
    path.write_text(json.dumps([{"root0": "Geometry and Figures", "root1": "Measurement", "root2": domain,
                                 "root3": concept, "root4": None, "full node": f"Measurement_{domain}_{concept}"}
                                for domain, concept in nodes]))
    return path


def test_wemath_knowledge_domains_from_the_structure_file(shared_data, tmp_path):
    data = tmp_path / "wemath"
    shutil.copytree(shared_data / "wemath", data)
    rows = json.loads((data / "data" / "testmini.json").read_text())
    one_step = [r for r in rows if not r["key"].endswith("multi")]
    a, b = one_step[0]["knowledge concept"], one_step[1]["knowledge concept"]
    assert a != b and ";" not in a + b
    bench = get_benchmark("wemath")
    no_file = bench.load(data)
    assert not any("knowledge_domains" in p.meta for p in no_file)  # no structure: nothing claimed

    nodes = [("Angles and Length", a), ("Angles and Length", a), ("Direction", a), ("Direction", b),
             ("Position", "A Concept No Item Has")]
    beside = _knowledge_file(data / "data" / wemath.KNOWLEDGE_FILE, nodes)
    loaded = bench.load_full(data)
    assert beside in loaded.files  # hashed into the run's manifest like the split file
    for p in loaded.problems:
        if p.meta["role"] == "multi":
            assert "knowledge_domains" not in p.meta
        else:
            expected = {a: ["Angles and Length", "Angles and Length", "Direction"], b: ["Direction"]}
            assert p.meta["knowledge_domains"] == expected.get(p.meta["knowledge_concept"], [])

    elsewhere = _knowledge_file(tmp_path / "nodes.json", [("Route Map", a)])
    beside.unlink()
    given = bench.load(data, knowledge_structure=str(elsewhere))
    assert {tuple(p.meta["knowledge_domains"]) for p in given if p.meta["knowledge_concept"] == a} == {("Route Map",)}
    with pytest.raises(FileNotFoundError, match="knowledge_structure=.*missing.json"):
        bench.load(data, knowledge_structure=str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"full node": "M_D_c", "root2": "D"}, {"full node": "M_D_d", "root2": ""}]))
    with pytest.raises(RecordError) as err:
        bench.load(data, knowledge_structure=str(bad))
    assert str(bad) in str(err.value) and "root2" in str(err.value) and err.value.line == 2


def test_wemath_accuracy_by_knowledge_domain_by_hand():
    """As accuracy.py: a concept's accuracy over its one-step sub-problems (of composites whose first sub-problem
    was evaluated), a domain's the mean over its nodes of their concepts' (c1 has two nodes in Direction).
    c1: g1-1 T, g2-1 F, g4-1 T -> 2/3; c2: g1-2 F -> 0; c3: g2-2 T, g4-2 T -> 1 (g3-2, wrong, is left out: g3's
    first sub-problem was not evaluated). Direction: (2 x 2/3 + 0) / 3 = 4/9 (its items' mean would be 1/2);
    Angles and Length: (0 + 1) / 2 = 1/2 (its items' mean would be 2/3)."""
    concepts = {"1": {"g1": "c1", "g2": "c1", "g4": "c1"}, "2": {"g1": "c2", "g2": "c3", "g3": "c3", "g4": "c3"}}
    domains = {"c1": ["Direction", "Direction"], "c2": ["Direction", "Angles and Length"], "c3": ["Angles and Length"]}
    correct = {"g1-1": True, "g1-2": False, "g2-1": False, "g2-2": True, "g3-2": False, "g4-1": True, "g4-2": True}
    problems = []
    for pid in correct:
        gid, role = pid.split("-")
        p = _wemath_problem(gid, 2, role)
        concept = concepts[role][gid]
        p.meta.update(knowledge_concept=concept, knowledge_domains=domains[concept])
        problems.append(p)
    out = wemath.official_metrics(_inp(problems, correct))
    table = next(t for t in out["tables"] if t["title"].startswith("accuracy by knowledge domain"))
    assert [r[:3] for r in table["rows"]] == [["Angles and Length", 2, 3], ["Direction", 2, 4]]
    assert table["rows"][0][3] == pytest.approx(1 / 2) and table["rows"][1][3] == pytest.approx(4 / 9)
    assert not any("knowledge_structure" in n for n in out["notes"])

    for p in problems:  # loaded without the structure file: no table, and a note that says how to get one
        p.meta.pop("knowledge_domains")
    out = wemath.official_metrics(_inp(problems, correct))
    assert not any(t["title"].startswith("accuracy by knowledge domain") for t in out["tables"])
    assert any("knowledge_structure=PATH" in n for n in out["notes"])


# ----------------------------------------------------------------------------- LogicVista

def test_logicvista_choices_and_capabilities(shared_data):
    problems = {p.id: p for p in get_benchmark("logicvista").load(shared_data / "logicvista")}
    assert len(problems) == 40
    assert problems["v1_145"].choices == ["25 lb", "30 lb", "35 lb", "50 lb", "60 lb"]
    assert problems["v1_112"].choices == ["(A)", "(B)", "(C)", "(D)"]  # options drawn in the image
    assert problems["v1_373"].choices is None  # nothing in the text: the profile's letters apply
    assert problems["v1_112"].meta["capability_group"] == ["diagram", "ocr", "diagram and ocr"]
    assert logicvista.parse_choices("x (A) 1 (B) 2 (D) 4") == ["1", "2 (D) 4"]  # letters must come in order


def test_logicvista_official_breakdowns_by_hand():
    def p(pid, skills, caps):
        return Problem(id=pid, question="q", answer="A",
                       meta={"skill": skills, "broad_capability": caps,
                             "capability_group": logicvista._capability_groups(caps), "specific_capability": []})
    problems = [p("a", ["inductive"], ["diagram"]), p("b", ["deductive"], ["ocr"]),
                p("c", ["inductive", "spatial"], ["diagram and ocr"])]
    out = logicvista.official_metrics(_inp(problems, {"a": True, "b": False, "c": False}))
    s = {x["name"]: x["value"] for x in out["summary"]}
    assert s["accuracy"] == pytest.approx(1 / 3) and s["inductive"] == 0.5 and s["deductive"] == 0.0
    assert s["spatial"] == 0.0 and s["numerical"] is None
    assert s["diagram"] == 0.5 and s["ocr"] == 0.0 and s["diagram and ocr"] == 0.0  # c is in all three groups


# ----------------------------------------------------------------------------- DynaMath

def _variant(root, k, data, images, answers):
    d = root / f"variant{k}"
    (d / "image").mkdir(parents=True)
    rows = {}
    for pid, row in data.items():
        shutil.copy(images / row["image"].split("/")[-1], d / "image")
        rows[pid] = {**row, "answer": answers.get(pid, row["answer"])}
    (d / "dataset.json").write_text(json.dumps(rows))


def test_dynamath_seeds_and_variants(shared_data, tmp_path):
    src = shared_data / "dynamath"
    root = tmp_path / "DynaMath"
    shutil.copytree(src, root)
    seeds = get_benchmark("dynamath").load(root)
    assert len(seeds) == 40 and all(p.meta["variant"] == 0 for p in seeds)
    mc = next(p for p in seeds if p.id == "169")
    assert mc.choices == ["odd", "even", "neither"] and mc.answer == "A"
    data = json.loads((src / "dataset" / "dataset.json").read_text())
    few = dict(list(data.items())[:3])
    _variant(root / "generated", 1, few, src / "dataset" / "image", {})
    _variant(root / "generated", 2, few, src / "dataset" / "image", {})
    problems = get_benchmark("dynamath").load(root)
    assert len(problems) == 46 and {p.id for p in problems if p.meta["variant"] == 2} == {f"{k}-v2" for k in few}
    assert get_benchmark("dynamath").load(root, variants="none") == seeds


@pytest.mark.parametrize("kind,truth,answer,expected", [
    ("float", "6.2832", "6.283", True), ("float", "6.2832", "2π", True), ("float", "6.2832", "6.28", False),
    ("float", "3", "3.0005 units", True), ("multiple choice", "A", "A", True),
    ("multiple choice", "A", "(A) odd", True), ("multiple choice", "A", "B", False),
    ("text", "(4, 3)", "The point is (4, 3)", True),
])
def test_dynamath_official_rules(kind, truth, answer, expected):
    p = Problem(id="x", question="q", answer=truth, meta={"official_answer_type": kind})
    assert dynamath.official_correct(p, answer) is expected


def test_dynamath_worst_case_by_hand():
    """Seed s1: seed right, v1 right, v2 wrong -> not robust. Seed s2: all right. 5 of 6 versions right...
    average 4/6, worst 1/2, RR 0.75."""
    def p(pid, seed, k):
        return Problem(id=pid, question="q", answer="1", meta={"seed_id": seed, "variant": k,
                                                                "official_answer_type": "float", "subject": "algebra",
                                                                "level": "high school"})
    problems = [p("s1", "s1", 0), p("s1-v1", "s1", 1), p("s1-v2", "s1", 2), p("s2", "s2", 0), p("s2-v1", "s2", 1),
                p("s2-v2", "s2", 2)]
    answers = {"s1": "1", "s1-v1": "1.0004", "s1-v2": "2", "s2": "1", "s2-v1": "0.9999", "s2-v2": "x"}
    out = dynamath.official_metrics(_inp(problems, {k: True for k in answers}, answers))
    s = {x["name"]: x["value"] for x in out["summary"]}
    assert s["average-case"] == pytest.approx(4 / 6) and s["worst-case"] == 0.0
    answers["s2-v2"] = "1"
    s = {x["name"]: x["value"] for x in dynamath.official_metrics(_inp(problems, {k: True for k in answers},
                                                                         answers))["summary"]}
    assert s["average-case"] == pytest.approx(5 / 6) and s["worst-case"] == 0.5 and s["RR"] == pytest.approx(0.6)


# ----------------------------------------------------------------------------- MMMU-Pro

def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 10)).save(buf, format="PNG")
    return buf.getvalue()


def test_mmmu_pro_sample_and_vision_layout(shared_data, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    standard = get_benchmark("mmmu_pro").load(shared_data / "mmmu" / "mmmu_pro_tool_sample")
    assert len(standard) == 21 and all(p.choices and p.images for p in standard)
    assert {p.meta["domain"] for p in standard} >= {"Health and Medicine"}
    (tmp_path / "vision").mkdir()
    rows = [{"id": f"test_Art_{i}", "image": {"bytes": _png(), "path": f"{i}.png"},
             "options": str(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]), "answer": "C", "subject": "Art"}
            for i in range(3)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "vision" / "test-00000-of-00001.parquet")
    vision = get_benchmark("mmmu_pro").load(tmp_path, "vision")
    assert len(vision) == 3 and vision[0].question == mmmu_pro.VISION_QUESTION and len(vision[0].choices) == 10
    assert vision[0].meta["domain"] == "Art and Design" and vision[0].meta["setting"] == "vision"
    with pytest.raises(DataMissingError, match="standard setting"):
        get_benchmark("mmmu_pro").load(tmp_path, "standard")


def test_mmmu_pro_official_domains_by_hand():
    problems = [Problem(id=f"p{i}", question="q", answer="A", meta={"subject": s, "domain": mmmu_pro.domain_of(s),
                                                                     "setting": "standard"})
                for i, s in enumerate(["Art", "Music", "Physics", "Clinical_Medicine"])]
    out = mmmu_pro.official_metrics(_inp(problems, {"p0": True, "p1": False, "p2": True, "p3": True}))
    s = {x["name"]: x["value"] for x in out["summary"]}
    assert s == {"accuracy": 0.75, "Art and Design": 0.5, "Health and Medicine": 1.0, "Science": 1.0}


def test_official_metrics_average_over_sample_passes():
    a = {"title": "t", "summary": [{"name": "acc", "value": 0.5, "format": "pct"}],
         "tables": [{"title": "x", "columns": ["", "n"], "formats": ["text", "int"], "rows": [["r", 2]]}]}
    b = {"title": "t", "summary": [{"name": "acc", "value": 1.0, "format": "pct"}],
         "tables": [{"title": "x", "columns": ["", "n"], "formats": ["text", "int"], "rows": [["r", 4]]}]}
    out = average([a, b])
    assert out["summary"][0]["value"] == 0.75 and out["tables"][0]["rows"] == [["r", 3.0]]
