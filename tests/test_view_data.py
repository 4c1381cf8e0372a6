"""`virgo view` without a browser: reading runs in every layout, joining two runs, marks, escaping, the CSP, images
and the command line. The runs are real eval run folders: problems with PNG images, generations made into records
by the runner's own `to_generation` (forced "Wait" and budget counts as the backends report them), graded by the
real grader (`virgo.eval.run.score`). The pages are opened in a real browser in test_view_browser.py.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from virgo.cli import app
from virgo.data.analytics import count_reflections
from virgo.eval.run import GENERATIONS_FILE, prepare_run, score
from virgo.infer import GenerateConfig, GenOutput, GenRequest, to_generation
from virgo.records import AppendWriter, Generation, Problem
from virgo.thought import render_response
from virgo.view.data import build_view_data
from virgo.view.marks import interventions, reflection_spans, thought_marks, utf16_offsets
from virgo.view.page import csp, script_json, write_view
from virgo.view.sources import ViewInputError, load_sources

XSS = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2"></script><!--'
CFG = GenerateConfig(max_new_tokens=64, thinking_budget=40, force_wait=1, prompt="plain")

PROBLEMS = [  # id, question, gold, image, level, subject, choices
    ("tri", "How many sides has the shape in the figure?", "3", "img/tri.png", "1", "counting", None),
    ("sq", "How many corners has the shape?", "4", "img/sq.png", "2", "counting", None),
    ("mc", "Which option is the largest number? " + XSS, "B", None, "2", "arithmetic", ["7", "9", "8 " + XSS]),
    ("cut", "What is 12 * 12?", "144", None, "3", "arithmetic", None),
]
# (text, finish, budget_forced, waits) per problem, for run A (base) and run B (virgo)
A = {
    "tri": (render_response("The shape has three sides. Wait, let me check the corners: three. So 3.",
                            "The answer is \\boxed{3}."), "stop", False, 1),
    "sq": (render_response("Four corners are visible. Hmm, I count 4, then I stop",
                           "The answer is \\boxed{4}."), "stop", True, 0),
    "mc": ("The answer is A.", "stop", False, 0),
    "cut": ("<|begin_of_thought|>\n\n12 * 12 = 100 + 40 + 4. Alternatively", "length", False, 0),
}
B = {
    "tri": (render_response("Sides: four? Actually, let me verify: the figure is a square.",
                            "The answer is \\boxed{4}."), "stop", False, 0),
    "sq": (render_response("A square has 4 corners. " + XSS, "The answer is \\boxed{4}. " + XSS), "stop", False, 0),
    "mc": (render_response("The options are 7, 9, 8. The largest is 9, option B.", "\\boxed{B}"), "stop", False, 0),
    "cut": (render_response("12 * 12 = 144. Let me verify: 144 / 12 = 12.", "\\boxed{144}"), "stop", False, 0),
}


def _problems(root: Path) -> list[Problem]:
    (root / "img").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (60, 40), (200, 40, 40)).save(root / "img" / "tri.png")
    Image.new("RGB", (40, 40), (40, 40, 200)).save(root / "img" / "sq.png")
    out = []
    for pid, q, gold, img, level, subject, choices in PROBLEMS:
        out.append(Problem(pid, q, gold, images=[str(root / img)] if img else [], choices=choices,
                           answer_type="multiple_choice" if choices else None,
                           meta={"level": level, "subject": subject}))
    return out


def graded_run(d: Path, problems: list[Problem], outputs: dict, label: str) -> Path:
    """A `virgo eval` run folder: records as the runner makes them, grades from the real grader."""
    prepare_run(d, problems, {"benchmark": "shapes", "split": "test", "model": f"models/{label}", "label": label,
                              "profile": "default", "breakdowns": ["level"], "generate": CFG.settings()})
    by_id = {p.id: p for p in problems}
    with AppendWriter(d / GENERATIONS_FILE) as w:
        for pid, (text, finish, forced, waits) in outputs.items():
            out = GenOutput(text=text, finish_reason=finish, completion_tokens=len(text.split()),
                            thought_tokens=len(text.split()), budget_forced=forced, waits=waits)
            w.write(to_generation(GenRequest.from_problem(by_id[pid], 0, CFG), out, CFG, model=label,
                                  backend="test"))
    score(d, workers=0, progress=False, report=False)
    return d


def build_pair(root: Path) -> tuple[Path, Path]:
    problems = _problems(root / "bench")
    return graded_run(root / "base", problems, A, "base"), graded_run(root / "virgo", problems, B, "virgo")


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    return build_pair(tmp_path_factory.mktemp("view"))


def _page_blocks(html: str) -> dict[str, object]:
    return {m.group(1): json.loads(m.group(2)) for m in
            re.finditer(r'<script type="application/json" id="([^"]+)">(.*?)</script>', html, re.DOTALL)}


# ------------------------------------------------------------------------------------------------ the data

def test_two_runs_join_with_real_verdicts_and_rules(pair):
    view = build_view_data(load_sources(list(pair)))
    probs, items = view.index["problems"], view.index["items"]
    assert [probs[it["p"]]["id"] for it in items] == ["tri", "sq", "mc", "cut"]
    verdicts = {probs[it["p"]]["id"]: (it["r"][0]["v"], it["r"][1]["v"]) for it in items}
    assert verdicts == {"tri": ("correct", "wrong"), "sq": ("correct", "correct"), "mc": ("wrong", "correct"),
                        "cut": ("truncated", "correct")}
    tri = items[0]["r"]
    assert tri[0]["x"] == "3" and tri[1]["x"] == "4" and tri[0]["b"] and tri[0]["e"] == "boxed"
    assert probs[0]["lvl"] == "1" and probs[0]["subj"] == "counting" and probs[0]["gold"] == "3"
    assert probs[2]["ch"] == ["7", "9", "8 " + XSS] and len(view.images) == 2
    assert [r["label"] for r in view.index["meta"]["runs"]] == ["base", "virgo"]
    assert view.index["meta"]["runs"][0]["unit"] == "tokens" and tri[0]["n"] is not None


def test_thought_texts_and_marks(pair):
    view = build_view_data(load_sources(list(pair)))
    base_tri = view.chunks[0][0][0]
    assert base_tri["t"].startswith("The shape has three sides.") and base_tri["s"] == "The answer is \\boxed{3}."
    phrases = [base_tri["t"][s:e].lower() for s, e in base_tri["r"]]
    assert phrases == ["wait", "let me check"]
    assert len(phrases) == sum(count_reflections(base_tri["t"]).values())
    # one forced Wait, position not recorded by this run: the "Wait" is marked as a candidate (not exact)
    assert base_tri["iv"] == [[base_tri["t"].index("Wait"), "wait", 0]]
    base_sq = view.chunks[0][1][0]  # the budget closed this thought: marked exactly at its end
    assert base_sq["iv"] == [[len(base_sq["t"]), "budget", 1]]
    base_mc = view.chunks[0][2][0]  # a plain answer: no thought, the raw output is kept
    assert base_mc["t"] is None and base_mc["raw"] == "The answer is A."
    assert view.index["items"][0]["r"][0]["w"] == 1 and view.index["items"][1]["r"][0]["bf"] == 1


def test_recorded_interventions_are_exact_and_utf16():
    thought = "𝑥 is 2. Wait, 𝑥 is 3. Hmm, wait again."
    text = render_response(thought, "\\boxed{3}")
    at = text.index("Wait")
    gen = Generation("a", 0, text, "stop", thought=thought, solution="\\boxed{3}", status="complete",
                     extra={"waits": 1, "interventions": [{"kind": "wait", "offset": at}, {"kind": "x", "offset": 1},
                                                          {"kind": "budget", "offset": 10 ** 6}]})
    ivs = interventions(gen)
    assert [(i.offset, i.kind, i.exact) for i in ivs] == [(thought.index("Wait"), "wait", True)]
    marks = thought_marks(gen)
    # JavaScript counts the astral 𝑥 as two code units: each one before an offset shifts it by one
    js = thought.encode("utf-16-le")
    for s, e in marks["r"]:
        assert js[2 * s:2 * e].decode("utf-16-le").lower() in ("wait", "hmm")
    assert marks["iv"][0][0] == thought.index("Wait") + 1  # one 𝑥 before it
    assert utf16_offsets("ab", [0, 2]) == [0, 2]
    assert reflection_spans("awaits, Wait-wait") == [(8, 12), (13, 17)]


def test_script_json_cannot_close_its_block():
    obj = {"t": XSS + "\u2028 & </SCRIPT >"}
    text = script_json(obj)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == obj


def test_page_escapes_model_text_and_hashes_its_own_script(pair, tmp_path):
    page = write_view(pair[0], pair[1], tmp_path / "p.html")
    html = page.read_text(encoding="utf-8")
    assert "window.pwned" in html and "<script>window.pwned" not in html and "<img src=x" not in html
    blocks = _page_blocks(html)
    virgo_sq = blocks["virgo-t-0"][1][1]  # the text comes back intact from the escaped JSON
    assert virgo_sq["t"].endswith(XSS) and virgo_sq["s"].endswith(XSS)
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    styles = re.findall(r"<style>(.*?)</style>", html, re.DOTALL)
    assert len(scripts) == 1 and len(styles) == 1
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert policy == csp(scripts[0], styles[0], folder=False)
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy and "http" not in policy.replace("http-equiv", "")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "Function("):
        assert sink not in scripts[0], sink


# ------------------------------------------------------------------------------------------------ layouts

def test_cli_writes_beside_the_run_and_names_a_pair(pair):
    res = CliRunner().invoke(app, ["view", str(pair[0])])
    assert res.exit_code == 0, res.output
    assert (pair[0] / "view.html").is_file() and "file://" in res.output
    res = CliRunner().invoke(app, ["view", str(pair[0]), str(pair[1]), "--label", "B", "--label", "V"])
    assert res.exit_code == 0, res.output
    html = (pair[0] / "view-vs-V.html").read_text(encoding="utf-8")
    assert _page_blocks(html)["virgo-index"]["meta"]["title"] == "B vs V"


def test_demo_folder_compares_base_and_virgo_t(tmp_path):
    problems = _problems(tmp_path / "bench")
    for variant, outputs in (("base", A), ("virgo-t", B), ("virgo-sd", B)):
        for s in ("visual_hard", "text"):
            graded_run(tmp_path / "demo" / "eval" / variant / s, problems, outputs, variant)
    (tmp_path / "demo" / "results.json").write_text(json.dumps({"variants": {"base": {}, "virgo-t": {},
                                                                              "virgo-sd": {}}}))
    page = write_view(tmp_path / "demo")
    assert page == tmp_path / "demo" / "view.html"
    index = _page_blocks(page.read_text(encoding="utf-8"))["virgo-index"]
    assert [r["label"] for r in index["meta"]["runs"]] == ["base", "virgo-t"]
    assert len(index["items"]) == 8 and {p["sub"] for p in index["problems"]} == {"visual_hard", "text"}
    assert set(index["meta"]["runs"][0]["acc_by_set"]) == {"visual_hard", "text"}
    one = write_view(tmp_path / "demo", out=tmp_path / "sd.html", variants=["virgo-sd"])
    assert [r["label"] for r in _page_blocks(one.read_text())["virgo-index"]["meta"]["runs"]] == ["virgo-sd"]
    with pytest.raises(ViewInputError, match="no evaluated variant virgo-x; found: base, virgo-t, virgo-sd"):
        write_view(tmp_path / "demo", variants=["virgo-x"])


def test_jsonl_pair_and_bad_lines(pair, tmp_path, capsys):
    gens = tmp_path / "gens.jsonl"
    good = (pair[1] / "generations.jsonl").read_text().splitlines()
    gens.write_text(good[0] + "\n{not json\n" + "\n".join(good[1:]) + "\n")
    res = CliRunner().invoke(app, ["view", str(gens), "--grades", str(pair[1] / "grades.jsonl"),
                                   "--problems", str(pair[1] / "problems.jsonl"), "-o", str(tmp_path / "g.html")])
    assert res.exit_code == 0, res.output
    assert f"{gens}:2" in res.output  # the bad line is named; the four good records are all on the page
    index = _page_blocks((tmp_path / "g.html").read_text())["virgo-index"]
    assert len(index["items"]) == 4 and index["problems"][0]["q"] == PROBLEMS[0][1]
    assert index["items"][0]["r"][0]["v"] == "wrong"
    alone = write_view(gens, out=tmp_path / "alone.html")  # no grades, no problems: still readable
    index = _page_blocks(alone.read_text())["virgo-index"]
    assert index["items"][0]["r"][0]["v"] == "ungraded" and index["problems"][0]["q"] is None


@pytest.mark.parametrize("args, message", [
    (["view"], "missing RUNS"),
    (["view", "a", "b", "c"], "give one or two runs, got 3"),
    (["view", "{missing}"], "no such run folder or generations file"),
    (["view", "{empty}"], "not a `virgo eval` run folder"),
    (["view", "{run}", "--grades", "x", "--grades", "y"], "--grades given 2 times for 1 run(s)"),
    (["view", "{run}", "--variant", "base"], "--variant applies to a demo folder only"),
])
def test_cli_errors_are_one_line(pair, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    fill = {"missing": str(tmp_path / "missing"), "empty": str(tmp_path / "empty"), "run": str(pair[0])}
    res = CliRunner().invoke(app, [a.format(**fill) for a in args])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


# ------------------------------------------------------------------------------------------------ images

def test_images_and_layouts(tmp_path, capsys):
    root = tmp_path / "r"
    problems = _problems(root / "bench")
    (root / "bench" / "img" / "evil.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>')
    Image.new("RGB", (3000, 1500), (10, 200, 10)).save(root / "bench" / "img" / "big.png")
    problems[2].images = [str(root / "bench" / "img" / "evil.svg"), str(root / "bench" / "img" / "big.png"),
                          str(root / "bench" / "img" / "gone.png")]
    run = graded_run(root / "run", problems, A, "base")
    page = write_view(run, out=tmp_path / "one.html", layout="file", max_side=400)
    err = capsys.readouterr().err
    assert "evil.svg: cannot be read" in err and "image not found" in err and "gone.png" in err
    html = page.read_text()
    blocks = _page_blocks(html)
    urls = blocks["virgo-i-0"]  # decoded and re-encoded by Pillow: the SVG never reaches the page
    assert len(urls) == 5 and urls[2] is None and urls[4] is None and "<svg" not in html
    big = Image.open(io.BytesIO(base64.b64decode(urls[3].split(",", 1)[1])))
    assert max(big.size) == 400 and blocks["virgo-index"]["meta"]["layout"] == "file"
    assert "'self'" not in html[:1000] and not (tmp_path / "one_files").exists()

    page = write_view(run, out=tmp_path / "two.html", layout="folder")
    html = page.read_text()
    index = _page_blocks(html)["virgo-index"]
    assert index["meta"]["layout"] == "folder" and index["imgsrc"][0] == "two_files/img-0.png"
    assert "virgo-t-0" not in html and "virgo-i-0" not in html  # the page holds the index only
    chunk = (tmp_path / "two_files" / "t-0.js").read_text()
    assert chunk.startswith('document.currentScript.dispatchEvent(new CustomEvent("virgo-data", {detail: ')
    assert "<" not in chunk and json.loads(chunk[chunk.index("detail: ") + 8:-5])[0][0]["t"].startswith("The shape")
    assert (tmp_path / "two_files" / "img-0.png").is_file() and "script-src 'sha256-" in html
    assert re.search(r"script-src 'sha256-[^']+' 'self';", html) and "img-src data: 'self';" in html
    page = write_view(run, out=tmp_path / "two.html", layout="file", images=False)  # rewritten as one file
    index = _page_blocks(page.read_text())["virgo-index"]
    assert not (tmp_path / "two_files").exists() and index["meta"]["layout"] == "file"
    assert "virgo-i-0" not in page.read_text()


def test_real_eval_run_from_the_tiny_model(tmp_path, tiny_model_dir):
    """`virgo.eval.evaluate` (the tiny model generating, the real grader) then `virgo view` on its run folder."""
    from virgo.eval import evaluate

    out = tmp_path / "run"
    evaluate(str(tiny_model_dir), _problems(tmp_path / "bench"), out, GenerateConfig(max_new_tokens=4), "default",
             label="tiny", workers=0, progress=False, report=False)
    res = CliRunner().invoke(app, ["view", str(out)])
    assert res.exit_code == 0, res.output
    index = _page_blocks((out / "view.html").read_text())["virgo-index"]
    assert len(index["items"]) == 4 and index["meta"]["runs"][0]["label"] == "tiny"
    assert all(it["r"][0]["v"] in ("correct", "wrong", "no_answer", "truncated") for it in index["items"])
    assert [p["id"] for p in index["problems"]] == ["tri", "sq", "mc", "cut"]  # the benchmark's order
    assert index["meta"]["layout"] == "file" and [len(p["img"]) for p in index["problems"]] == [1, 1, 0, 0]
