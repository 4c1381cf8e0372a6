"""The demo's verdicts on the paper's claims, per seed and over seeds, from hand-made results."""

import json

from virgo.demo.report import findings, observations, write_report
from virgo.demo.summary import summarize, write_summary

SETS = ("visual_easy", "visual_hard", "text")


def _entry(acc: float, *, think: float = 0.0, thought: float = 0.0, completion: float = 6.0, n: int = 200):
    se = (acc * (1 - acc) / n) ** 0.5
    correct = round(acc * n)
    return {"accuracy": acc, "n": n, "stderr": se, "think_rate": think, "mean_thought_tokens": thought,
            "mean_completion_tokens": completion, "perception_fidelity": 0.9 if think else None,
            "restate_rate": think, "well_formed_rate": think,
            "verdicts": {"correct": correct, "wrong": n - correct, "no_answer": 0, "truncated": 0}}


def _results(seed: int, vt_hard: float, sd_hard: float | None) -> dict:
    variants = {"base": {s: _entry(0.6) for s in SETS},
                "virgo-t": {s: _entry(vt_hard if s == "visual_hard" else 0.8, think=1.0, thought=40.0,
                                      completion=50.0) for s in SETS}}
    skipped = {}
    if sd_hard is None:
        skipped["virgo-sd"] = "no self-distilled example passed the correctness filter"
    else:
        variants["virgo-sd"] = {s: _entry(sd_hard if s == "visual_hard" else 0.7, think=1.0, thought=40.0)
                                for s in SETS}
    return {"seed": seed, "quick": False, "variants": variants, "skipped": skipped, "total_seconds": 300.0,
            "seconds": {"train virgo-t": 100.0},
            "self_distillation": {"samples": 4, "problems": 600, "rollout_accuracy": 0.5, "kept": 300}}


def test_findings_use_the_fixed_thresholds_on_visual_hard():
    claims = {c: (h, n) for c, h, n in findings(_results(0, vt_hard=0.75, sd_hard=0.70))}
    t_claim = next(c for c in claims if c.startswith("Virgo-T beats"))
    # +15 points, 2 SE of the difference = 2 * sqrt(.6*.4/200 + .75*.25/200) = 9.3: holds
    assert claims[t_claim][0] and "+15.0 points" in claims[t_claim][1]
    think_claim = next(c for c in claims if c.startswith("Virgo-T thinks"))
    assert claims[think_claim][0]  # 40 thought tokens >= 3 x 6 answer tokens
    sd_claim = next(c for c in claims if c.startswith("Virgo-SD"))
    assert claims[sd_claim][0]  # +10 points > 2 SE (9.4)

    weak = {c: h for c, h, _ in findings(_results(0, vt_hard=0.68, sd_hard=0.64))}
    assert not weak[t_claim]  # +8 points: under the 10-point bar even if it were significant
    assert not weak[sd_claim]  # +4 points: within 2 SE
    skipped = {c: (h, n) for c, h, n in findings(_results(0, vt_hard=0.8, sd_hard=None))}
    assert skipped[sd_claim] == (False, "not trained: no self-distilled example passed the correctness filter")


def test_rl_claim_only_with_rl_and_against_virgo_t():
    res = _results(0, vt_hard=0.50, sd_hard=0.40)
    assert not any(c.startswith("Virgo-T+RL") for c, _, _ in findings(res))  # not asked for: no claim
    res["variants"]["virgo-t+rl"] = {s: _entry(0.62 if s == "visual_hard" else 0.8, think=1.0, thought=40.0)
                                     for s in SETS}
    rl = {c: (h, n) for c, h, n in findings(res) if c.startswith("Virgo-T+RL")}
    # +12 points over Virgo-T (not the base), 2 SE = 2 * sqrt(.5*.5/200 + .62*.38/200) = 9.9: holds
    assert list(rl.values()) == [(True, "62.0 vs 50.0 (+12.0 points, 2 SE = 9.9)")]
    res["variants"]["virgo-t+rl"]["visual_hard"] = _entry(0.58)
    assert not next(h for c, h, _ in findings(res) if c.startswith("Virgo-T+RL"))  # +8 points: within 2 SE
    del res["variants"]["virgo-t+rl"]
    res["skipped"]["virgo-t+rl"] = "train virgo-t failed"
    assert [(h, n) for c, h, n in findings(res) if c.startswith("Virgo-T+RL")] == [
        (False, "not trained: train virgo-t failed")]


def test_report_states_each_claim_and_the_observations(tmp_path):
    res = _results(3, vt_hard=0.75, sd_hard=0.70)
    report = write_report(res, tmp_path).read_text()
    assert "(seed 3)" in report and "| base (direct answers) | 60.0 ± 3.5 |" in report
    assert "- **yes**: Virgo-T beats the base on held-out multi-step visual questions" in report
    assert any(o.startswith("Virgo-T vs base on visual easy: 80.0 vs 60.0") for o in observations(res))
    assert (tmp_path / "accuracy.png").stat().st_size > 5000


def test_summary_counts_seeds_per_claim_and_keeps_every_seed(tmp_path):
    runs = {0: _results(0, 0.75, 0.70), 1: _results(1, 0.66, 0.70), 2: _results(2, 0.80, None)}
    summary = summarize(runs)
    assert summary["seeds"] == [0, 1, 2]
    assert set(summary["variants"]) == {"base", "virgo-t"}  # virgo-sd is missing on seed 2
    vt = summary["variants"]["virgo-t"]["visual_hard"]
    assert vt["per_seed"] == [0.75, 0.66, 0.80] and abs(vt["mean"] - 0.7366666) < 1e-6
    t_claim = next(c for c in summary["findings"] if c.startswith("Virgo-T beats"))
    assert summary["findings"][t_claim]["holds_on"] == [0, 2] and summary["findings"][t_claim]["fails_on"] == [1]
    md = write_summary(summary, tmp_path).read_text()
    assert "**2 of 3 seeds**: Virgo-T beats the base" in md and "seed 1: does NOT hold" in md
    assert json.loads((tmp_path / "summary.json").read_text())["seeds"] == [0, 1, 2]
