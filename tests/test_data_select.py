"""`virgo data select`: seeded and reproducible; length bins (lo, hi]; counts; domain quotas; nested subsets."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from virgo.cli import app
from virgo.data.formats import read_dataset, write_dataset
from virgo.data.select import parse_bins, parse_quota, quota_counts, select
from virgo.records import LongThoughtExample, SFTExample

DOMAINS = ["math", "math", "math", "physics", "code", "puzzle"]  # 3:1:1:1


def _records(n: int = 120) -> list:
    """Thought lengths (approximate tokens = words here) 10, 20, ..., 10*n; domains cycle through DOMAINS."""
    recs = [LongThoughtExample(id=f"r{i:03d}", question=f"q{i}", thought=" ".join(["w"] * (10 * (i + 1))),
                               solution="s", domain=DOMAINS[i % len(DOMAINS)]) for i in range(n)]
    recs.append(SFTExample(id="plain", question="q", response="no thought here", domain="math"))
    return recs


def _run(*args):
    r = CliRunner().invoke(app, ["data", "select", *map(str, args), "--no-progress"])
    return r


def test_same_seed_same_bytes_different_seed_differs(tmp_path):
    src = tmp_path / "in.jsonl"
    write_dataset(src, _records(), "virgo")
    outs = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        r = _run(src, "--out", tmp_path / f"{name}.jsonl", "--n", 30, "--seed", seed)
        assert r.exit_code == 0, r.output
        outs[name] = (tmp_path / f"{name}.jsonl").read_bytes()
    assert outs["a"] == outs["b"]
    assert outs["a"] != outs["c"]
    ids = [json.loads(x)["id"] for x in outs["a"].decode().splitlines()]
    order = [r.id for r in _records()]
    assert len(ids) == 30 == len(set(ids)) and ids == sorted(ids, key=order.index)  # input order kept


def test_counts_are_nested_for_one_seed(tmp_path):
    """1K within 3K within 5K, as a data-scaling ablation (the paper's Table 5) wants."""
    domains = [r.domain for r in _records()]
    small, mid, big = (set(select(domains, n=k, seed=7).indices) for k in (10, 30, 100))
    assert len(small) == 10 and len(mid) == 30 and len(big) == 100
    assert small < mid < big


def test_bins_are_half_open_and_per_bin(tmp_path):
    src = tmp_path / "in.json"  # LLaMA-Factory in, LLaMA-Factory out
    write_dataset(src, _records(), "llamafactory")
    out = tmp_path / "bins.json"
    report = tmp_path / "report.json"
    r = _run(src, "--out", out, "--bins", "0-200,200-400,400-800", "--per-bin", 5, "--report", report)
    assert r.exit_code == 0, r.output
    rows = json.loads(out.read_text())
    assert len(rows) == 15
    rep = json.loads(report.read_text())
    # Lengths 10..200 are in (0, 200] (20 records: 200 is in, 210 is not), (200, 400] holds 210..400 (20).
    assert [(g["group"], g["available"], g["selected"]) for g in rep["groups"]] == [
        ("(0, 200]", 20, 5), ("(200, 400]", 20, 5), ("(400, 800]", 40, 5)]
    assert rep["excluded"] == {"no thought (no length)": 1, "length outside (0, 200], (200, 400], (400, 800]": 40}
    assert rep["tokenizer"].startswith("approx") and rep["length_of"] == "thought"
    _, res = read_dataset(out)
    lengths = sorted(len(x.thought.split()) for x in res.records)
    assert sum(1 for v in lengths if v <= 200) == 5 and sum(1 for v in lengths if 200 < v <= 400) == 5
    assert all(v <= 800 for v in lengths)
    # Bins alone keep everything inside them.
    r = _run(src, "--out", tmp_path / "all.json", "--bins", "0-200")
    assert r.exit_code == 0 and len(json.loads((tmp_path / "all.json").read_text())) == 20


def test_domain_quotas_shares_and_counts(tmp_path):
    domains = [r.domain for r in _records()]
    sel = select(domains, n=40, quota=parse_quota("math=0.5,physics=0.25,*=0.25"), seed=0)
    got = {g["group"]: g["selected"] for g in sel.groups}
    assert got == {"math": 20, "physics": 10, "*": 10}
    chosen = [domains[i] for i in sel.indices]
    assert chosen.count("math") == 20 and chosen.count("physics") == 10
    assert chosen.count("code") + chosen.count("puzzle") == 10
    # Counts, and domains not named are left out.
    sel = select(domains, quota=parse_quota("code=5,puzzle=3"), seed=0)
    assert sorted(domains[i] for i in sel.indices) == ["code"] * 5 + ["puzzle"] * 3
    assert sel.excluded == {"domain not in the quota": 81}  # 61 math, 20 physics
    # Shares round by largest remainder and add up exactly.
    assert quota_counts({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, 10) == {"a": 4, "b": 3, "c": 3}
    assert sum(quota_counts(parse_quota("a=0.5,b=0.3,c=0.2"), 999).values()) == 999


def test_quota_via_cli_with_bins_into_still(tmp_path):
    src = tmp_path / "in.jsonl"
    write_dataset(src, _records(), "still")
    out = tmp_path / "out.jsonl"
    r = _run(src, "--out", out, "--bins", "0-600", "--n", 12, "--quota", "math=0.5,physics=0.25,code=0.25",
             "--seed", 3)
    assert r.exit_code == 0, r.output
    fmt, res = read_dataset(out)
    assert fmt.name == "still"  # the input's JSONL layout is kept
    doms = [x.domain for x in res.records]
    assert (doms.count("math"), doms.count("physics"), doms.count("code")) == (6, 3, 3)
    assert all(len(x.thought.split()) <= 600 for x in res.records)


def test_too_few_records_fails_unless_allowed(tmp_path):
    src = tmp_path / "in.jsonl"
    write_dataset(src, _records(12), "virgo")
    r = _run(src, "--out", tmp_path / "o.jsonl", "--n", 50)
    assert r.exit_code == 2 and "50 wanted but only 13 available" in r.output
    assert not (tmp_path / "o.jsonl").exists()
    r = _run(src, "--out", tmp_path / "o.jsonl", "--n", 50, "--allow-short")
    assert r.exit_code == 0 and len((tmp_path / "o.jsonl").read_text().splitlines()) == 13


def test_bad_input_records_stop_the_selection(tmp_path):
    src = tmp_path / "in.jsonl"
    write_dataset(src, _records(5), "virgo")
    with src.open("a") as f:
        f.write('{"id": "x", "question": "q", "thought": ""}\n')
    r = _run(src, "--out", tmp_path / "o.jsonl", "--n", 2)
    assert r.exit_code == 2
    assert f"{src}:7: field 'solution': missing required field" in r.output
    assert "virgo data validate" in r.output


@pytest.mark.parametrize("text,expected", [
    ("0-2000,2000-4000,4000-8000", [(0, 2000), (2000, 4000), (4000, 8000)]),
    ("8000-", [(8000, math.inf)]),
    ("100-inf, 0-100", [(100, math.inf), (0, 100)]),
])
def test_parse_bins(text, expected):
    assert parse_bins(text) == expected


@pytest.mark.parametrize("text,msg", [("0-2000,1000-3000", "overlap"), ("5-5", "LO < HI"), ("abc", "bad bin"),
                                      ("", "no bins")])
def test_parse_bins_errors(text, msg):
    with pytest.raises(ValueError, match=msg):
        parse_bins(text)


@pytest.mark.parametrize("text,msg", [("math=1.5", "share"), ("math", "bad quota"), ("a=0.7,b=0.6", "> 1"),
                                      ("a=1,a=2", "twice")])
def test_parse_quota_errors(text, msg):
    with pytest.raises(ValueError, match=msg):
        parse_quota(text)


def test_option_conflicts():
    with pytest.raises(ValueError, match="--per-bin needs --bins"):
        select(["a"], per_bin=1)
    with pytest.raises(ValueError, match="shares need --n"):
        select(["a"], quota={"a": 0.5})
    with pytest.raises(ValueError, match="not both"):
        select(["a"], lengths=[1], bins=[(0, 2)], per_bin=1, quota={"a": 1})
