"""Benchmark loaders on the shared real data (counts = MANIFEST.md, every image opens) and on official-format
fixtures made here (MathVerse multimodal, MMMU parquet, OlympiadBench HF parquet), plus the registry."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from virgo.eval.registry import filter_problems, get_benchmark, list_benchmarks, parse_where, select
from virgo.eval.sources import DataMissingError, as_list
from virgo.records import RecordError


def _opens(path: str) -> bool:
    with Image.open(path) as im:
        im.verify()
    return True


def _png(color=(200, 30, 30), size=(12, 9)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


# ----------------------------------------------------------------------------- real data

def test_mathvision_testmini_real(shared_data):
    probs = get_benchmark("mathvision").load(shared_data / "mathvision", "testmini")
    assert len(probs) == 304
    assert all(len(p.images) == 1 and _opens(p.images[0]) for p in probs)
    with_options = [p for p in probs if p.choices]
    assert len(with_options) == 190 and all("Choices:\nA. " in p.question for p in with_options)
    assert all(p.answer in "ABCDE" for p in with_options)
    assert {p.meta["level"] for p in probs} == {1, 2, 3, 4, 5} and len({p.meta["subject"] for p in probs}) == 16
    assert not any("<image" in p.question for p in probs)  # placeholders rewritten to [image N]


def test_mathvision_test_split_missing_names_file_and_source(shared_data):
    with pytest.raises(DataMissingError) as e:
        get_benchmark("mathvision").load(shared_data / "mathvision", "test")
    msg = str(e.value)
    assert "test split file 'data/test.jsonl' not found" in msg
    assert f"  - {shared_data / 'mathvision' / 'data' / 'test.jsonl'}" in msg  # where it looked
    # Where to get it, and exactly the layout the loader reads (the GitHub repository's, not the HF parquet copy).
    assert "https://github.com/mathllm/MATH-V" in msg
    assert "DIR/data/test.jsonl" in msg and "DIR/images/<id>.jpg" in msg
    assert "HF MathLLMs/MathVision parquet copy is not this layout" in msg


def test_mathvision_missing_image_names_it_where_and_source(tmp_path):
    (tmp_path / "data").mkdir()
    row = {"id": "7", "question": "Which?", "options": [], "answer": "3", "level": 1, "subject": "algebra",
           "image": "images/7.jpg"}
    (tmp_path / "data" / "test.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(DataMissingError) as e:
        get_benchmark("mathvision").load(tmp_path, "test")
    msg = str(e.value)
    assert "image 'images/7.jpg' of item 7 not found" in msg
    assert f"  - {tmp_path / 'images' / '7.jpg'}" in msg and "https://github.com/mathllm/MATH-V" in msg


def test_mmmu_missing_split_names_files_where_and_source(tmp_path):
    with pytest.raises(DataMissingError) as e:
        get_benchmark("mmmu").load(tmp_path)
    msg = str(e.value)
    assert "mmmu: the validation split not found" in msg
    assert e.value.tried == [str(tmp_path / "<Subject>" / "validation-*.parquet"), str(tmp_path / "validation.jsonl"),
                             str(tmp_path / "data.jsonl")]
    assert all(f"  - {t}" in msg for t in e.value.tried)
    assert "Get it from: HF MMMU/MMMU (<Subject>/validation-*.parquet)" in msg
    assert "https://github.com/MMMU-Benchmark/MMMU" in msg


def test_mmmu_missing_image_names_it_where_and_source(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "validation_Art_1_1.png").write_bytes(_png())
    row = {"id": "validation_Art_1", "question": "<image 1> and <image 2>?", "options": "['a', 'b']", "answer": "A",
           "image_1": "images/validation_Art_1_1.png", "image_2": "images/validation_Art_1_2.png"}
    (tmp_path / "validation.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(DataMissingError) as e:
        get_benchmark("mmmu").load(tmp_path)
    msg = str(e.value)
    assert "image 'images/validation_Art_1_2.png' of item validation_Art_1 not found" in msg
    assert e.value.tried[0] == str(tmp_path / "images" / "validation_Art_1_2.png")
    assert "HF MMMU/MMMU" in msg


def test_mathverse_text_only_real(shared_data):
    probs = get_benchmark("mathverse").load(shared_data / "mathverse", "testmini_text_only")
    assert len(probs) == 788
    kinds = Counter(p.meta["question_type"] for p in probs)
    assert kinds == {"multi-choice": 436, "free-form": 352}
    assert all(p.images == [] and p.meta["problem_version"] == "Text Only" for p in probs)
    mc = [p for p in probs if p.answer_type == "multiple_choice"]
    assert sum(1 for p in mc if p.choices) >= 400 and mc[0].choices == ["40°", "60°", "120°", "140°"]


def test_mathverse_default_split_excludes_text_only(shared_data):
    # The real folder has only the text-only file: the default (five visual versions) says what is missing.
    with pytest.raises(DataMissingError) as e:
        get_benchmark("mathverse").load(shared_data / "mathverse")
    assert "testmini.json" in str(e.value) and "AI4Math/MathVerse" in str(e.value)


def test_olympiadbench_original_release_real(shared_data):
    spec = get_benchmark("olympiadbench")
    folder = shared_data / "olympiadbench" / "feb2024_release"
    every = spec.load(folder, include_theorem_proving=True)
    assert len(every) == 1495 + 793
    default = spec.load(folder)
    assert len(default) == 930 + 749  # theorem proving excluded by default
    assert not any(p.meta["question_type"] == "theorem-proving" for p in default)
    assert Counter(p.meta["subject"] for p in default) == {"maths": 930, "physics": 749}
    tol = [p for p in default if p.meta["error"]]
    assert tol and all(p.meta["error"] for p in tol)
    linked = [p for p in default if p.meta.get("images_missing")]
    assert linked and all("![" not in p.question and p.meta["modality"] == "multimodal" for p in linked)
    assert len(spec.load(folder, skip_missing_images=True)) == len(default) - len(linked)


def test_olympiadbench_qwen_copy_real(shared_data):
    probs = get_benchmark("olympiadbench").load(shared_data / "olympiadbench" / "qwen25math_OE_TO_maths_en_COMP")
    assert len(probs) == 675
    assert ({(p.meta["subject"], p.meta["language"], p.meta["modality"]) for p in probs}
            == {("maths", "en", "text-only")})
    assert sum(p.meta["is_multiple_answer"] for p in probs) == 94
    assert all(p.answer == p.meta["final_answers"][0] for p in probs)


def test_olympiadbench_two_layouts_in_one_folder_is_an_error(shared_data):
    with pytest.raises(ValueError, match="point --data-dir at one"):
        get_benchmark("olympiadbench").load(shared_data / "olympiadbench")


def test_mmmu_real_sample(shared_data):
    probs = get_benchmark("mmmu").load(shared_data / "mmmu" / "mmmu_pro_tool_sample")
    assert len(probs) == 21 and len({p.id for p in probs}) == 21
    assert all(p.images and all(_opens(i) for i in p.images) for p in probs)
    multi = next(p for p in probs if len(p.images) == 5)
    assert multi.id == "test_Music_251" and [Path(i).stem for i in multi.images] == [f"test_Music_251_{k}" for k in
                                                                                      range(1, 6)]
    assert multi.choices == ["[image 4]", "[image 2]", "[image 5]", "[image 3]"]
    assert multi.question.startswith("[image 1] is a substitution")
    keys = json.loads((shared_data / "mmmu" / "answer_dict_val.json").read_text())
    assert len(keys) == 900  # the validation answer key the parquet loader's ids follow


# ----------------------------------------------------------------------------- official-format fixtures

def _mathverse_fixture(root: Path) -> Path:
    """Two problems x five versions in the official testmini.json layout, plus the text-only file."""
    versions = [("Text Dominant", "images_version_1-4"), ("Text Lite", "images_version_1-4"),
                ("Vision Intensive", "images_version_1-4"), ("Vision Dominant", "images_version_5"),
                ("Vision Only", "images_version_6")]
    rows, sample = [], 0
    for pidx, (qtype, answer) in enumerate([("multi-choice", "B"), ("free-form", "14")], start=1):
        for version, folder in versions:
            sample += 1
            img = f"{folder}/image_{pidx}.png"
            (root / "images" / folder).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (20, 16), (sample * 10, 0, 0)).save(root / "images" / img)
            q = ("" if version == "Vision Only"
                 else ("Find x.\nChoices:\nA:1\nB:2" if qtype == "multi-choice" else "Find L."))
            rows.append({"sample_index": str(sample), "problem_index": str(pidx), "problem_version": version,
                         "question": q, "image": img, "answer": answer, "question_type": qtype,
                         "metadata": {"split": "testmini", "source": "fixture", "subject": "Plane Geometry",
                                      "subfield": "Angle"},
                         "query_wo": "Q: " + q,
                         "query_cot": "According to the question shown in the image, please first conduct reasoning."
                         if version == "Vision Only" else "Please first conduct reasoning.\nQuestion: " + q})
    (root / "testmini.json").write_text(json.dumps(rows))
    text_only = [{**rows[0], "problem_version": "Text Only", "image": "", "sample_index": "1"}]
    (root / "testmini_text_only.json").write_text(json.dumps(text_only))
    return root


def test_mathverse_multimodal_fixture(tmp_path):
    root = _mathverse_fixture(tmp_path / "MathVerse")
    spec = get_benchmark("mathverse")
    probs = spec.load(root)
    assert len(probs) == 10 and Counter(p.meta["problem_version"] for p in probs)["Vision Only"] == 2
    assert all(len(p.images) == 1 and _opens(p.images[0]) for p in probs)
    vision_only = next(p for p in probs if p.meta["problem_version"] == "Vision Only")
    assert vision_only.question.startswith("According to the question shown in the image")
    assert "images_version_6" in vision_only.images[0]
    mc = next(p for p in probs if p.answer_type == "multiple_choice" and p.choices)
    assert mc.choices == ["1", "2"]
    with_text = spec.load(root, include_text_only=True)
    assert len(with_text) == 11 and with_text[-1].id == "text-only-1" and with_text[-1].images == []
    only = spec.load(root, versions=["Vision Dominant", "Vision Only"])
    assert {p.meta["problem_version"] for p in only} == {"Vision Dominant", "Vision Only"} and len(only) == 4
    cot = spec.load(root, question_field="query_cot")
    assert cot[0].question.startswith("Please first conduct reasoning.")
    with pytest.raises(ValueError, match="unknown loader option"):
        spec.load(root, bogus=1)


def _write_parquet(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def _mmmu_row(subject: str, n: int, **kw) -> dict:
    row = {"id": f"validation_{subject}_{n}", "question": f"Look at <image 1>. What is shown? ({subject} {n})",
           "options": "['cat', 'dog', 'bird']", "explanation": "", "img_type": "['Photographs']", "answer": "B",
           "topic_difficulty": "Easy", "question_type": "multiple-choice", "subfield": "Sub"}
    for k in range(1, 8):
        row[f"image_{k}"] = None
    row["image_1"] = {"bytes": _png((n * 40 % 255, 20, 20)), "path": f"{subject}_{n}.png"}
    row.update(kw)
    return row


def test_mmmu_official_parquet_fixture(tmp_path):
    root = tmp_path / "MMMU"
    multi = _mmmu_row("Music", 2, question="<image 1> and <image 2>: which matches?",
                      options="['<image 3>', 'neither', 'both']", topic_difficulty="Hard", answer="A",
                      image_2={"bytes": _png((0, 200, 0)), "path": "b.png"},
                      image_3={"bytes": _png((0, 0, 200)), "path": "c.png"})
    _write_parquet(root / "Art" / "validation-00000-of-00001.parquet",
                   [_mmmu_row("Art", 1), _mmmu_row("Art", 2, topic_difficulty="Medium")])
    _write_parquet(root / "Music" / "validation-00000-of-00001.parquet",
                   [_mmmu_row("Music", 1, question_type="open", options="[]", answer="42"), multi])
    _write_parquet(root / "Music" / "dev-00000-of-00001.parquet", [_mmmu_row("Music", 9)])
    probs = get_benchmark("mmmu").load(root)
    assert [p.id for p in probs] == ["validation_Art_1", "validation_Art_2", "validation_Music_1",
                                     "validation_Music_2"]
    assert all(p.images and all(_opens(i) for i in p.images) for p in probs)
    m = probs[-1]
    assert len(m.images) == 3 and m.question.startswith(
        "[image 1] and [image 2]: which matches?\nChoices:\nA. [image 3]")
    assert m.meta["topic_difficulty"] == "Hard" and m.meta["subject"] == "Music"
    assert probs[0].choices == ["cat", "dog", "bird"] and probs[0].meta["img_type"] == ["Photographs"]
    assert probs[2].answer_type == "free_form" and probs[2].choices is None and probs[2].answer == "42"
    assert [p.meta["topic_difficulty"] for p in probs] == ["Easy", "Medium", "Easy", "Hard"]
    # images are written out once and reused
    first = Path(probs[0].images[0]).stat().st_mtime_ns
    assert Path(get_benchmark("mmmu").load(root)[0].images[0]).stat().st_mtime_ns == first
    assert len(get_benchmark("mmmu").load(root, "dev")) == 1


def test_mmmu_options_are_never_evaluated(tmp_path):
    # A malicious options string is parsed by a literal parser: it fails with a located error, runs nothing.
    root = tmp_path / "MMMU"
    _write_parquet(root / "Art" / "validation-0.parquet",
                   [_mmmu_row("Art", 1, options="[__import__('os').system('touch pwned')]")])
    with pytest.raises(RecordError) as e:
        get_benchmark("mmmu").load(root)
    assert "options" in str(e.value) and not (Path.cwd() / "pwned").exists()


def _oly_row(i: int, **kw) -> dict:
    row = {"id": i, "question": f"Compute $x_{i}$.", "solution": ["..."], "final_answer": [str(i)],
           "context": None, "modality": "Text-only", "difficulty": "Competition", "is_multiple_answer": False,
           "unit": None, "answer_type": "Numerical", "error": None, "question_type": "Open-ended",
           "subfield": "Algebra", "subject": "Math", "language": "English"}
    for k in range(1, 10):
        row[f"image_{k}"] = None
    row.update(kw)
    return row


def test_olympiadbench_hf_parquet_fixture(tmp_path):
    root = tmp_path / "OlympiadBench"
    mm = _oly_row(7, question="In <image_1>, find the length; see also <image_2>.", modality="Multimodal",
                  subject="Physics", image_1={"bytes": _png(), "path": "a.jpg"},
                  image_2={"bytes": _png((1, 2, 3)), "path": "b.jpg"}, final_answer=["$3$"], error="1e-1", unit="m")
    _write_parquet(root / "OE_MM_physics_en_COMP" / "OE_MM_physics_en_COMP.parquet",
                   [mm, _oly_row(8, context="A ball falls.", subject="Physics", modality="Multimodal")])
    # final_answer as a Python-literal list string (as in the Qwen2.5-Math copy)
    _write_parquet(root / "OE_TO_maths_zh_CEE" / "OE_TO_maths_zh_CEE.parquet",
                   [_oly_row(9, language="Chinese", final_answer="['9']")])
    _write_parquet(root / "TP_TO_maths_en_COMP" / "TP_TO_maths_en_COMP.parquet",
                   [_oly_row(10, question_type="Theorem proof", final_answer=None)])
    spec = get_benchmark("olympiadbench")
    probs = spec.load(root)
    assert sorted(p.id for p in probs) == ["OE_MM_physics_en_COMP-7", "OE_MM_physics_en_COMP-8",
                                           "OE_TO_maths_zh_CEE-9"]
    p7 = next(p for p in probs if p.id.endswith("-7"))
    assert p7.question == "In [image 1], find the length; see also [image 2]." and len(p7.images) == 2
    assert all(_opens(i) for i in p7.images)
    assert p7.answer == "$3$" and p7.meta["error"] == "1e-1" and p7.meta["unit"] == "m"
    assert (p7.meta["subject"], p7.meta["language"], p7.meta["modality"]) == ("physics", "en", "multimodal")
    p8 = next(p for p in probs if p.id.endswith("-8"))
    assert p8.question.startswith("A ball falls.\n")
    p9 = next(p for p in probs if p.id.endswith("-9"))
    assert (p9.meta["language"], p9.meta["subject"], p9.meta["exam"]) == ("zh", "maths", "CEE") and p9.answer == "9"
    assert len(spec.load(root, include_theorem_proving=True)) == 4
    assert [p.id for p in filter_problems(probs, parse_where(["language=en", "subject=physics"]))] == \
        ["OE_MM_physics_en_COMP-7", "OE_MM_physics_en_COMP-8"]


def test_olympiadbench_missing_folder_says_where_from(tmp_path):
    with pytest.raises(DataMissingError) as e:
        get_benchmark("olympiadbench").load(tmp_path)
    assert "Hothan/OlympiadBench" in str(e.value)


# ----------------------------------------------------------------------------- registry

def test_registry_and_user_jsonl_spec(tmp_path):
    assert set(list_benchmarks()) >= {"mathvision", "mathverse", "olympiadbench", "mmmu"}
    Image.new("RGB", (8, 8)).save(tmp_path / "fig.png")
    rows = [{"qid": "a", "problem": "What is 2+2? <image 1>", "gold": "4", "img": "fig.png", "level": 1},
            {"qid": "b", "problem": "Pick one.", "gold": "B", "opts": ["x", "y"], "level": 2}]
    (tmp_path / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "mine.yaml").write_text(
        "name: mine\nloader: jsonl\nsource: made by the test\nsplits: {test: mine.jsonl}\nbreakdowns: [level]\n"
        "options:\n  fields: {id: qid, question: problem, answer: gold, images: img, choices: opts}\n")
    spec = get_benchmark(tmp_path / "mine.yaml")
    probs = spec.load(tmp_path)
    assert [p.id for p in probs] == ["a", "b"] and probs[0].question == "What is 2+2? [image 1]"
    assert _opens(probs[0].images[0]) and probs[0].meta["level"] == 1
    assert probs[1].question.endswith("Choices:\nA. x\nB. y") and probs[1].answer_type == "multiple_choice"
    (tmp_path / "bad.yaml").write_text("name: bad\nloader: jsonl\nsplits: {test: x.jsonl}\ncolour: red\n")
    with pytest.raises(ValueError, match="unknown keys"):
        get_benchmark(tmp_path / "bad.yaml")
    with pytest.raises(ValueError, match="unknown benchmark"):
        get_benchmark("nope")


def test_select_is_seeded_and_keeps_file_order():
    from virgo.records import Problem

    probs = [Problem(id=str(i), question="q", answer="a") for i in range(50)]
    a, b, c = select(probs, 10, 7), select(probs, 10, 7), select(probs, 10, 8)
    assert [p.id for p in a] == [p.id for p in b] != [p.id for p in c]
    assert [int(p.id) for p in a] == sorted(int(p.id) for p in a) and len(select(probs, None, 0)) == 50


def test_as_list_literal_strings():
    assert as_list("['a', 'b']", field="f") == ["a", "b"]
    assert as_list(["x"], field="f") == ["x"] and as_list(None, field="f") == []
    assert as_list("[0, 1]", field="f") == [0, 1] and as_list("plain", field="f") == ["plain"]
    with pytest.raises(RecordError):
        as_list("[open('x')]", field="f")
