"""Each added benchmark end to end on its real sample through `virgo eval` with the tiny model, then `virgo report`
with its official metrics; and n samples per item up to pass@k / maj@k / mean@k in the report.

Accuracy is meaningless with a random model; the pipeline and the metrics' presence and consistency are tested.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from virgo.cli import app


def _invoke(*args) -> str:
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res.output


def _eval(model, bench, data, out, *extra):
    return _invoke("eval", "--model", model, "--benchmark", bench, "--data-dir", data, "--max-new-tokens", 2,
                   "--workers", 0, "--out", out, *extra)


@pytest.fixture(scope="module")
def mathvista_images(shared_data, tmp_path_factory):
    """The MathVista images are not in its repository: a folder of stand-ins named as images.zip names them."""
    d = tmp_path_factory.mktemp("mathvista-images") / "images"
    d.mkdir()
    for row in json.loads((shared_data / "mathvista" / "data" / "testmini.json").read_text()).values():
        Image.new("RGB", (28, 28), (120, 120, 120)).save(d.parent / row["image"])
    return d


@pytest.fixture(scope="module")
def wemath_knowledge(shared_data, tmp_path_factory):
    """A knowledge_structure_nodes.json (We-Math's layout) placing the sample's one-step concepts in two domains."""
    rows = json.loads((shared_data / "wemath" / "data" / "testmini.json").read_text())
    concepts = sorted({r["knowledge concept"] for r in rows if not r["key"].endswith("multi")})
    path = tmp_path_factory.mktemp("wemath") / "knowledge_structure_nodes.json"
    path.write_text(json.dumps([{"root2": ("Direction", "Position")[i % 2], "full node": f"M_D_{c}"}
                                for i, c in enumerate(concepts)]))
    return path


CASES = {  # benchmark -> (data folder under shared data, extra eval args (callable of fixtures), official title)
    "mathvista": ("mathvista", "MathVista (official answer normalisation)"),
    "wemath": ("wemath", "We-Math (four-dimensional metrics)"),
    "logicvista": ("logicvista", "LogicVista (skills and capabilities)"),
    "dynamath": ("dynamath", "DynaMath (average and worst case)"),
    "mmmu_pro": ("mmmu/mmmu_pro_tool_sample", "MMMU-Pro (standard setting)"),
}


@pytest.mark.slow
@pytest.mark.parametrize("bench", list(CASES))
def test_benchmark_end_to_end_with_official_metrics(bench, shared_data, tiny_model_dir, mathvista_images,
                                                    wemath_knowledge, tmp_path):
    folder, title = CASES[bench]
    out = tmp_path / bench
    extra = {"mathvista": ["--option", f"image_dir={mathvista_images}"],
             "wemath": ["--option", f"knowledge_structure={wemath_knowledge}"]}.get(bench, [])
    printed = _eval(tiny_model_dir, bench, shared_data / folder, out, *extra)
    n_items = 21 if bench == "mmmu_pro" else 40
    assert f"{n_items} of {n_items} items" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == n_items and metrics["benchmark"] == bench
    official = metrics["official"]
    assert official["title"] == title and official["samples"] == 1 and official["hook"] == bench
    assert all(s["value"] is None or isinstance(s["value"], (int, float)) for s in official["summary"])
    report = (out / "report.md").read_text()
    assert "## Official metrics" in report and f"### {title}" in report
    if bench == "wemath":  # the knowledge-domain roll-up, with the structure file given
        assert "accuracy by knowledge domain" in report and "| Direction |" in report and "| Position |" in report

    # `virgo report` shows the official metrics of runs side by side (here the run twice, under two names).
    cmp_dir = tmp_path / "cmp"
    _invoke("report", out, out, "--out", cmp_dir, "--label", f"{out}=tiny")
    md = (cmp_dir / "report.md").read_text()
    section = md.split("## Official metrics")[1].split("\n## ")[0]
    assert f"| run | {official['summary'][0]['name']} |" in section
    assert section.count(f"| tiny / {bench} |") == 2
    assert json.loads((cmp_dir / "report.json").read_text())["runs"][0]["metrics"]["official"]["title"] == title


def test_mathvista_without_images_fails_in_one_line(shared_data, tiny_model_dir, tmp_path):
    res = CliRunner().invoke(app, ["eval", "--model", str(tiny_model_dir), "--benchmark", "mathvista", "--data-dir",
                                   str(shared_data / "mathvista"), "--out", str(tmp_path / "run")])
    assert res.exit_code == 2 and "40 of 40 images" in res.output and "image_dir" in res.output
    assert "Traceback" not in res.output


@pytest.mark.slow
def test_n_samples_give_pass_maj_mean_at_k(shared_data, tiny_model_dir, tmp_path):
    out = tmp_path / "sampled"
    _eval(tiny_model_dir, "logicvista", shared_data / "logicvista", out, "--limit", 6, "--n", 4, "--temperature",
          1.0, "--max-new-tokens", 3)
    m = json.loads((out / "metrics.json").read_text())
    s = m["sampling"]
    assert s["n"] == 4 and set(s["pass@k"]) == {"1", "2", "3", "4"}
    assert s["mean@k"]["4"]["value"] == pytest.approx(m["accuracy"])  # every item has its 4 samples
    assert s["pass@k"]["1"]["value"] == pytest.approx(m["accuracy"])
    assert all(s["pass@k"][k]["value"] <= s["pass@k"][str(int(k) + 1)]["value"] + 1e-12 for k in ("1", "2", "3"))
    assert _ks_shown(out / "report.md") == ["1", "2", "4"]  # default k: 1, 2, 4 (= n)
    _invoke("report", out, "--k", 3, "--out", tmp_path / "k3")
    assert _ks_shown(tmp_path / "k3" / "report.md") == ["3"]


def _ks_shown(md) -> list[str]:
    section = md.read_text().split("## Sampling: pass@k, maj@k, mean@k")[1].split("\n## ")[0]
    return [ln.split("|")[2].strip() for ln in section.splitlines() if ln.startswith("| ") and "---" not in ln
            and not ln.startswith("| run")]
