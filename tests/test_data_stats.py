"""`virgo data stats`: counts, completeness classes, token-length percentiles, reflections; real Sky-T1 responses."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner
from PIL import Image
from test_thought import REAL_COUNTS  # the parser's pinned counts on the same 500 responses

from virgo.cli import app
from virgo.data.formats import read_dataset, write_dataset
from virgo.data.stats import compute_stats
from virgo.records import LongThoughtExample, SFTExample
from virgo.thought import render_response


def _small(tmp_path):
    Image.new("RGB", (6, 6)).save(tmp_path / "i.png")
    img = str(tmp_path / "i.png")
    return [
        LongThoughtExample(id="1", question="q", thought="a b c d", solution="x y", domain="math", images=[img]),
        LongThoughtExample(id="2", question="q", thought="Wait, a b. Hmm, wait.", solution="z", domain="math"),
        LongThoughtExample(id="3", question="q", thought=" ".join(["w"] * 30), solution="s t u", domain="physics",
                           source="qwq"),
        SFTExample(id="4", question="q", response="<|begin_of_thought|>\n\ncut off here", domain=None),
        SFTExample(id="5", question="q", response="Just the answer, 5.", images=[img, img]),
    ]


def test_compute_stats_on_a_small_dataset(tmp_path):
    st = compute_stats(_small(tmp_path), bins=[(0, 5), (5, 100)]).summary
    assert st["n"] == 5
    assert st["kinds"] == {"long_thought": 3, "sft": 2}
    assert st["modality"] == {"text_only": 3, "with_images": 2}
    assert st["images_per_record"] == {"0": 3, "1": 1, "2": 1}
    assert st["domains"] == {"math": 2, "none": 2, "physics": 1}
    assert st["sources"] == {"none": 4, "qwq": 1}
    assert st["status"] == {"complete": 3, "truncated": 1, "unclosed_solution": 0, "no_solution": 0, "malformed": 0,
                            "plain": 1}
    # Approximate tokens: words and punctuation marks. Thoughts: 4, 9, 30 and the truncated one (3).
    assert st["lengths"]["thought"] == {"count": 4, "mean": 11.5, "min": 3, "p50": 4, "p90": 30, "p99": 30,
                                        "max": 30}
    assert st["lengths"]["solution"]["count"] == 3
    assert st["thought_lengths_by_domain"]["physics"]["max"] == 30
    assert st["reflections"]["by_phrase"]["wait"] == 2 and st["reflections"]["by_phrase"]["hmm"] == 1
    assert st["reflections"]["total"] == 3 and st["reflections"]["share_with_any"] == 0.2
    assert st["thought_bins"] == {"(0, 5]": {"math": 1, "none": 1}, "(5, 100]": {"math": 1, "physics": 1}}
    assert st["thought_bins_outside"] == {"none": 1}  # the plain response has no thought


def test_stats_cli_tables_json_plot_and_custom_lexicon(tmp_path):
    data = tmp_path / "d.json"
    write_dataset(data, _small(tmp_path), "llamafactory")
    lex = tmp_path / "lex.txt"
    lex.write_text("cut off\njust\n")
    runner = CliRunner()
    r = runner.invoke(app, ["data", "stats", str(data), "--plot", str(tmp_path / "h.png"), "--bins", "0-5,5-"])
    assert r.exit_code == 0, r.output
    for text in ("domain", "physics", "truncated", "p99", "reflection phrases", "approx", "(0, 5]", "> 5"):
        assert text in r.output
    with Image.open(tmp_path / "h.png") as im:
        assert im.format == "PNG" and im.size[0] > 300
    r = runner.invoke(app, ["data", "stats", str(data), "--json", "--lexicon", str(lex)])
    assert r.exit_code == 0, r.output
    st = json.loads(r.output)
    assert st["format"] == "llamafactory" and st["bad_records"] == 0
    assert st["reflections"]["by_phrase"] == {"cut off": 1, "just": 1}


def test_stats_with_a_model_tokenizer(tmp_path):
    from virgo.modeling.corpus import builtin_corpus
    from virgo.modeling.tokenizer import train_tokenizer

    tok = train_tokenizer(builtin_corpus(n_lines=500), vocab_size=300)
    tok.save_pretrained(tmp_path / "tok")
    recs = _small(tmp_path)
    stats = compute_stats(recs, tokenizer=tmp_path / "tok")
    thoughts = [r.thought for r in recs[:3]] + ["cut off here"]  # the truncated response's partial thought
    assert stats.lengths["thought"] == [len(tok(t, add_special_tokens=False)["input_ids"]) for t in thoughts]
    assert stats.lengths["thought"] != compute_stats(recs).lengths["thought"]  # not the approximation
    assert stats.summary["tokenizer"] == f"tokenizer {tmp_path / 'tok'}"


def test_stats_on_the_real_long_thoughts(shared_data, tmp_path):
    """The 500 Sky-T1 responses as a STILL file: the completeness classes are the parser's pinned counts."""
    src = shared_data / "long_thought" / "Sky-T1-math-correct-5K-27B__math500.jsonl"
    rows = [json.loads(line) for line in src.open(encoding="utf-8")]
    still = tmp_path / "sky.jsonl"
    with still.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"question": r["question"], "combined_text": r["code"][0], "domain": "math",
                                "id": f"math500-{r['idx']}", "source": "Sky-T1"}, ensure_ascii=False) + "\n")
    r = CliRunner().invoke(app, ["data", "stats", str(still), "--json", "--plot", str(tmp_path / "h.png"),
                                 "--bins", "0-2000,2000-4000,4000-8000,8000-"])
    assert r.exit_code == 0, r.output
    st = json.loads(r.output)
    assert st["format"] == "still" and st["n"] == 500 and st["bad_records"] == 0
    assert {k: v for k, v in st["status"].items() if v} == REAL_COUNTS
    assert st["domains"] == {"math": 500} and st["modality"] == {"text_only": 500, "with_images": 0}
    with_thought = 500 - REAL_COUNTS["plain"]
    assert st["lengths"]["thought"]["count"] == with_thought
    assert st["lengths"]["solution"]["count"] == REAL_COUNTS["complete"] + REAL_COUNTS["unclosed_solution"]
    t = st["lengths"]["thought"]
    assert 0 < t["min"] <= t["p50"] <= t["p90"] <= t["p99"] <= t["max"]
    assert sum(sum(b.values()) for b in st["thought_bins"].values()) == with_thought
    # "wait" counted independently: in the thought when there is one, else in the whole response.
    from virgo.thought import parse_response

    expected_wait = 0
    for row in rows:
        p = parse_response(row["code"][0])
        expected_wait += len(re.findall(r"(?<!\w)wait(?!\w)", p.thought if p.thought is not None else row["code"][0],
                                        re.IGNORECASE))
    assert st["reflections"]["by_phrase"]["wait"] == expected_wait > 100
    # 170 of the 179 complete responses are in render_response's layout (the newlines between the markers), so
    # they read as (thought, solution) exactly as written -- Sky-T1's solutions keep the newlines around them
    # ("<|begin_of_solution|>\n\n..."). The other 9 put other whitespace between the markers (" \n<|end_of_...",
    # or no opening marker) and stay exact text; --normalize-thoughts makes all 179 (thought, solution), trimmed.
    assert st["kinds"] == {"long_thought": 170, "sft": 330}
    assert (tmp_path / "h.png").stat().st_size > 1000
    r = CliRunner().invoke(app, ["data", "convert", str(still), str(tmp_path / "norm.jsonl"), "--normalize-thoughts"])
    assert r.exit_code == 0, r.output
    recs = read_dataset(tmp_path / "norm.jsonl")[1].records
    assert sum(isinstance(x, LongThoughtExample) for x in recs) == REAL_COUNTS["complete"]
    assert all(x.thought.strip() == x.thought and x.thought for x in recs if isinstance(x, LongThoughtExample))


def test_rendered_layout_is_what_makes_a_long_thought(tmp_path):
    still = tmp_path / "s.jsonl"
    still.write_text(json.dumps({"question": "q", "combined_text": render_response("t", "s")}) + "\n")
    st = compute_stats(read_dataset(still)[1].records).summary
    assert st["kinds"] == {"long_thought": 1, "sft": 0}
