"""Rollouts graded by the real grading library, cached per rollout, then banded and filtered (no model needed)."""

from __future__ import annotations

import json

from virgo.distill.config import BandConfig, DistillConfig
from virgo.distill.pipeline import DistillPaths, distill
from virgo.distill.rollout import grade_rollouts
from virgo.grade.config import GradeConfig
from virgo.records import Generation, Grade, LongThoughtExample, Problem, read_records, write_records
from virgo.thought import BEGIN_THOUGHT, render_response

# (problem id, gold, base greedy answer, five rollout answers; None = a truncated rollout)
HAND = [
    ("tri", "5", "4", ["5", "5", "5", "5", "7"]),          # 4/5 -> medium
    ("area", r"\frac{1}{2}", "0.5", ["0.5"] * 5),           # base greedy solves it -> easy
    ("angle", "30", "60", ["30", "60", "30", None, "45"]),  # 2/5 -> hard
    ("count", "12", "10", ["12", "11", "13", "14", None]),  # 1/5 -> unused
]


def make(tmp_path):
    img = tmp_path / "img"
    img.mkdir()
    problems, gens, base = [], [], []
    for pid, gold, base_ans, answers in HAND:
        (img / f"{pid}.png").write_bytes(b"\x89PNG fake")  # never decoded here: only the path travels
        problems.append(Problem(id=pid, question=f"Find the value in the figure ({pid}).", answer=gold,
                                images=[str(img / f"{pid}.png")]))
        base.append(Generation(id=pid, sample=0, text=f"The answer is \\boxed{{{base_ans}}}.", finish_reason="stop"))
        for s, a in enumerate(answers):
            thought = f"Look at the {pid} figure. " + " ".join(f"step{pid}{s}x{i}" for i in range(8 + 3 * s))
            text = (render_response(thought, f"So the answer is \\boxed{{{a}}}.") if a is not None
                    else f"{BEGIN_THOUGHT}\n\n{thought}")
            gens.append(Generation(id=pid, sample=s, text=text, finish_reason="stop" if a else "length",
                                   model="m0-teacher"))
    return problems, gens, base


def test_grades_are_real_and_cached_per_rollout(tmp_path):
    problems, gens, _ = make(tmp_path)
    path = tmp_path / "g.jsonl"
    grades = grade_rollouts(problems, gens, path, workers=0)
    verdicts = {(g.id, g.sample): g.verdict for g in grades}
    assert verdicts[("tri", 0)] == "correct" and verdicts[("tri", 4)] == "wrong"
    assert verdicts[("area", 2)] == "correct"  # 0.5 == \frac{1}{2} by the math grader
    assert verdicts[("angle", 3)] == "truncated"
    before = path.read_text()
    # A second call grades nothing new: the file is unchanged.
    assert [g.to_dict() for g in grade_rollouts(problems, gens, path, workers=0)] == [g.to_dict() for g in grades]
    assert path.read_text() == before
    # A changed rollout is regraded, and the stale grade leaves the file.
    gens[4] = Generation(id="tri", sample=4, text=render_response("redo", r"\boxed{5}"), finish_reason="stop")
    again = grade_rollouts(problems, gens, path, workers=0)
    assert again[4].verdict == "correct"
    on_disk = read_records(path, Grade)
    assert len(on_disk) == len(gens) and len({g.key for g in on_disk}) == len(gens)


def _filter_only(out, tmp_path, **bands):
    """`virgo distill --filter-only` on the rollouts in ``out``, the base's greedy answers in base.jsonl."""
    return DistillConfig(problems=str(tmp_path / "problems.jsonl"), out=str(out), filter_only=True,
                         base_greedy=str(tmp_path / "base.jsonl"), bands=BandConfig(**bands),
                         grade=GradeConfig(workers=0), progress=False)


def test_filter_only_run_writes_bands_dataset_and_stats(tmp_path):
    problems, gens, base = make(tmp_path)
    out = tmp_path / "run" / "rollouts.jsonl"
    write_records(out, gens)
    write_records(tmp_path / "base.jsonl", base)
    res = distill(problems, _filter_only(out, tmp_path, band="medium,hard"))
    paths: DistillPaths = res["paths"]
    stats = json.loads(paths.stats.read_text())
    assert stats["bands"] == {"easy": 1, "medium": 1, "hard": 1, "unused": 1}
    assert stats["grading"]["base"]["verdicts"]["correct"] == 1
    assert stats["grading"]["teacher"]["n"] == 20
    data = read_records(paths.dataset, LongThoughtExample)
    assert [(d.id, d.extra["sample"], d.extra["band"]) for d in data] == [("tri", 0, "medium"), ("angle", 0, "hard")]
    # Images are written relative to the dataset file and resolve back to the problem's image.
    raw = json.loads(paths.dataset.read_text().splitlines()[0])
    assert not raw["images"][0].startswith("/")
    assert data[0].images == problems[0].images and data[0].source == "m0-teacher"
    # The random band ignores the base filter: with every solved problem drawn, the easy one is in.
    res = distill(problems, _filter_only(out, tmp_path, band="random", random_size=10))
    assert sorted(e.id for e in res["examples"]) == ["angle", "area", "count", "tri"]
