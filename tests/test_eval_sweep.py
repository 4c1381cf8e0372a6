"""Thinking-budget sweep on the tiny model: the table and the curve are written, the sweep resumes and grows, and a
generation is reused across budgets exactly where that is valid (greedy, no forcing, the budget never cut it).

With 6 new tokens, budget 2 cuts every thought (forced close), while under budgets 8 and 16 no thought reaches the
cap: budget 16 must reuse all of budget 8's generations and none of budget 2's, and the reused texts must equal
what a fresh run at budget 16 generates.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from virgo.cli import app
from virgo.eval.sweep import carry_over, reusable
from virgo.records import Generation, write_records


def _invoke(*args) -> str:
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res.output


def _gens(path) -> dict[tuple[str, int], dict]:
    """Generation rows by (id, sample); a record's extra fields (budget_forced, reused_from_budget) are top-level."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["id"], r["sample"]): r for r in rows}


def _sweep(model, data, out, budgets, *extra):
    return _invoke("eval", "--model", model, "--benchmark", "logicvista", "--data-dir", data, "--limit", 4,
                   "--max-new-tokens", 6, "--workers", 0, "--label", "tiny", "--thinking-budget", budgets,
                   "--out", out, *extra)


@pytest.mark.slow
def test_budget_sweep_table_curve_reuse_and_resume(shared_data, tiny_model_dir, tmp_path):
    data, out = shared_data / "logicvista", tmp_path / "sweep"
    printed = _sweep(tiny_model_dir, data, out, "2,8")
    assert "budget 2: accuracy" in printed and "budget 8: accuracy" in printed
    b2, b8 = _gens(out / "budget-2" / "generations.jsonl"), _gens(out / "budget-8" / "generations.jsonl")
    assert all(g["budget_forced"] for g in b2.values())  # the cap cut every thought at 2 tokens
    assert not any(g["budget_forced"] for g in b8.values())
    assert not any("reused_from_budget" in g for g in b8.values())  # budget 2's were all cut: none reused

    # Resume and grow: the same command with one more budget generates nothing new for 2 and 8, reuses all of 8's.
    printed = _sweep(tiny_model_dir, data, out, "2,8,16")
    assert "budget 16: 4 generation(s) reused from budget 8" in printed
    assert _gens(out / "budget-2" / "generations.jsonl") == b2 and _gens(out / "budget-8" / "generations.jsonl") == b8
    b16 = _gens(out / "budget-16" / "generations.jsonl")
    assert {k: g["text"] for k, g in b16.items()} == {k: g["text"] for k, g in b8.items()}
    assert all(g["reused_from_budget"] == 8 and g["settings"]["thinking_budget"] == 16 for g in b16.values())

    # Exactly valid: a fresh greedy run at budget 16 writes the same texts.
    fresh = tmp_path / "fresh16"
    _invoke("eval", "--model", tiny_model_dir, "--benchmark", "logicvista", "--data-dir", data, "--limit", 4,
            "--max-new-tokens", 6, "--workers", 0, "--thinking-budget", 16, "--out", fresh)
    assert {k: g["text"] for k, g in _gens(fresh / "generations.jsonl").items()} == \
        {k: g["text"] for k, g in b16.items()}

    # The table (markdown + JSON) and the curve.
    md = (out / "report.md").read_text()
    table = md.split("## Thinking-budget sweep")[1].split("\n## ")[0]
    rows = [ln for ln in table.splitlines() if ln.startswith("| ") and not ln.startswith("| budget")
            and "---" not in ln]
    assert [r.split("|")[1].strip() for r in rows] == ["2", "8", "16"]
    assert [r.split("|")[6].strip() for r in rows] == ["0", "0", "4"]  # reused
    assert [r.split("|")[5].strip() for r in rows] == ["100", "0", "0"]  # cut by the budget, %
    assert "![accuracy against thinking tokens](plots/budget-curve.png)" in md
    assert (out / "plots" / "budget-curve.png").stat().st_size > 1000
    summary = json.loads((out / "report.json").read_text())["sweeps"][0]
    assert [r["budget"] for r in summary["rows"]] == [2, 8, 16] and all(r["n"] == 4 for r in summary["rows"])
    assert all(r["mean_thought_tokens"] is not None and r["generations"] == 4 for r in summary["rows"])


@pytest.mark.slow
@pytest.mark.parametrize("extra", [("--temperature", 1.0), ("--force-wait", 1)])
def test_no_reuse_with_sampling_or_forcing(extra, shared_data, tiny_model_dir, tmp_path):
    out = tmp_path / "sweep"
    _sweep(tiny_model_dir, shared_data / "logicvista", out, "8,16", *extra)
    b8, b16 = _gens(out / "budget-8" / "generations.jsonl"), _gens(out / "budget-16" / "generations.jsonl")
    assert len(b16) == 4 and not any("reused_from_budget" in g for g in b16.values())
    assert any(not g["budget_forced"] for g in b8.values())  # reusable by budget alone: the mode forbids it


def _gen(sample: int, **kw) -> Generation:
    base = {"temperature": 0.0, "force_wait": 0, "thinking_budget": 8}
    extra = {"budget_forced": False}
    return Generation(id="q", sample=sample, text="x", finish_reason="stop", thought="x",
                      thought_tokens=kw.pop("thought_tokens", 3), settings={**base, **kw.pop("settings", {})},
                      extra={**extra, **kw.pop("extra", {})})


def test_the_reuse_rule():
    assert reusable(_gen(0), 8)
    assert not reusable(_gen(0, settings={"temperature": 0.7}), 8)  # sampled
    assert not reusable(_gen(0, settings={"force_wait": 2}), 8)  # s1 forcing
    assert not reusable(_gen(0, extra={"budget_forced": True}), 8)  # the cap cut it
    assert not reusable(_gen(0, extra={"budget_forced": None}), 8)  # unknown: a backend that cannot say
    assert not reusable(_gen(0, thought_tokens=8), 8)  # reached the cap
    assert not reusable(_gen(0), 16)  # made under another budget than the one claimed


def test_carry_over_copies_only_reusable_and_missing(tmp_path):
    prev, dest = tmp_path / "budget-8", tmp_path / "budget-16"
    prev.mkdir()
    write_records(prev / "generations.jsonl", [_gen(0), _gen(1, extra={"budget_forced": True}), _gen(2)])
    dest.mkdir()
    write_records(dest / "generations.jsonl", [_gen(2, settings={"thinking_budget": 16})])
    assert carry_over(prev, 8, dest, 16, {"q"}) == 1  # sample 0 only: 1 was cut, 2 is already there
    assert carry_over(prev, 8, dest, 16, {"q"}) == 0
    assert carry_over(prev, 8, tmp_path / "other", 16, {"another-problem"}) == 0
