"""``virgo report``: markdown + JSON + PNG plots for one run or several side by side.

One run: accuracy overall and per breakdown, verdict counts (truncation kept apart), thought
analytics (length distribution, accuracy by length bucket, reflection phrases, length by difficulty),
the paper's published numbers for that benchmark, and the run's reproducibility manifest.
Several runs (e.g. base versus Virgo, on several benchmarks): the paper's Table 2 layout with our
runs above the published rows, side-by-side breakdowns and thought analytics, MMMU by difficulty
next to Table 3, and the perception-versus-reasoning table when caption runs are present. Runs with n samples get
pass@k / maj@k / mean@k (`virgo.eval.sections`), runs repeated with other seeds their spread, a benchmark with
official metrics its own tables (`virgo.eval.official`), and a thinking-budget sweep folder its curve
(`virgo.eval.sweep`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from virgo.eval import layout, official, paper, plots, sections
from virgo.eval.markdown import num, pct, table

RUN_FILE, METRICS_FILE, MANIFEST_FILE = "run.json", "metrics.json", "manifest.json"
TOP_PHRASES = 12


@dataclass
class RunView:
    """What a report needs from one run folder."""

    dir: Path
    info: dict[str, Any]
    metrics: dict[str, Any]
    manifest: dict[str, Any]
    label: str

    @property
    def benchmark(self) -> str:
        return self.info.get("benchmark") or "custom"

    @property
    def captioned(self) -> bool:
        return (self.info.get("ablation") or {}).get("kind") == "caption"

    @property
    def name(self) -> str:
        """The run's name in side-by-side tables: label, benchmark, and the ablation if any."""
        return f"{self.label} / {self.benchmark}" + (" (captions)" if self.captioned else "")


def load_run(run_dir: str | Path, label: str | None = None) -> RunView:
    d = Path(run_dir)
    for name in (RUN_FILE, METRICS_FILE):
        if not (d / name).is_file():
            raise FileNotFoundError(f"{d / name} not found: is {d} a finished `virgo eval` run folder?")
    info = json.loads((d / RUN_FILE).read_text(encoding="utf-8"))
    metrics = json.loads((d / METRICS_FILE).read_text(encoding="utf-8"))
    manifest = json.loads((d / MANIFEST_FILE).read_text(encoding="utf-8")) if (d / MANIFEST_FILE).is_file() else {}
    label = label or info.get("label") or Path(str(info.get("model", d.name))).name
    return RunView(d, info, metrics, manifest, label)


# ----------------------------------------------------------------------------- formatting

def acc_cell(block: dict[str, Any] | None) -> str:
    if not block or block.get("n", 0) == 0:
        return "—"
    return f"{pct(block['accuracy'])} ± {pct(block['stderr'])} (n={block['n']})"


# ----------------------------------------------------------------------------- sections

def _section_overview(runs: list[RunView]) -> str:
    rows = []
    for r in runs:
        m = r.metrics
        grader = r.info.get("profile", "—")
        if m.get("max_answer_chars"):
            grader += f" (answers ≤ {m['max_answer_chars']} chars)"
        rows.append([r.name, r.info.get("split", "—"), str(r.info.get("model", "—")), acc_cell(m),
                     str(m.get("n_missing", 0)), grader])
    return "## Accuracy\n\n" + table(["run", "split", "model", "accuracy % ± s.e.", "missing", "grader"], rows)


def _section_verdicts(runs: list[RunView], out: Path) -> str:
    verdicts = list(runs[0].metrics["verdicts"])
    rows = [[r.name] + [str(r.metrics["verdicts"].get(v, 0)) for v in verdicts] +
            [str(r.metrics["thought"]["finish_reason"].get("length", 0))] for r in runs]
    plots.stacked_verdicts(out / "plots" / "verdicts.png", "Verdicts (truncation kept apart)", [r.name for r in runs],
                           {v: [r.metrics["verdicts"].get(v, 0) for r in runs] for v in verdicts})
    text = ("## Verdicts\n\n`truncated` = the thought or solution never closed, or the generation stopped at its "
            "token limit; it is never merged into `wrong`.\n\n")
    return text + table(["run"] + verdicts + ["hit token limit"], rows) + "\n\n![verdicts](plots/verdicts.png)"


def _section_breakdowns(runs: list[RunView], out: Path) -> str:
    parts = ["## Breakdowns"]
    by_bench: dict[str, list[RunView]] = defaultdict(list)
    for r in runs:
        by_bench[r.benchmark].append(r)
    for bench, group in by_bench.items():
        keys: list[str] = []
        for r in group:
            keys += [k for k in r.metrics["breakdowns"] if k not in keys]
        for key in keys:
            values: list[str] = []
            for r in group:
                values += [v for v in r.metrics["breakdowns"].get(key, {}) if v not in values]
            rows = [[v] + [acc_cell(r.metrics["breakdowns"].get(key, {}).get(v)) for r in group] for v in values]
            png = f"plots/{bench}-{key}.png"
            plots.grouped_bars(out / png, f"{bench}: accuracy by {key}", values,
                               {r.name: [_acc100(r.metrics["breakdowns"].get(key, {}).get(v)) for v in values]
                                for r in group},
                               {r.name: [_se100(r.metrics["breakdowns"].get(key, {}).get(v)) for v in values]
                                for r in group})
            parts.append(f"### {bench}: by {key}\n\n" + table([key] + [r.name for r in group], rows)
                         + f"\n\n![{key}]({png})")
    return "\n\n".join(parts)


def _acc100(block):
    return None if not block or block["accuracy"] is None else 100 * block["accuracy"]


def _se100(block):
    return None if not block or block["stderr"] is None else 100 * block["stderr"]


def _section_thought(runs: list[RunView], out: Path) -> str:
    parts = ["## Thought analytics",
             "Reasoning length = tokens of the thought when the response has one, else of the whole completion."]
    rows = []
    for r in runs:
        t = r.metrics["thought"]
        rl, refl = t["reasoning_length"], t["reflections"]
        rows.append([r.name, f"{t['with_thought']}/{t['n']}", num(rl["mean"]), num(rl["median"]), num(rl["p90"]),
                     num(rl["max"]), num(refl["mean_per_response"], 2), pct(refl["share_with_any"]),
                     pct(refl["accuracy_with"]), pct(refl["accuracy_without"])])
    parts.append(table(["run", "with thought", "mean len", "median", "p90", "max", "reflections / response",
                        "% with reflection", "acc. with refl. %", "acc. without %"], rows))

    status_keys: list[str] = []
    for r in runs:
        status_keys += [s for s in r.metrics["thought"]["status"] if s not in status_keys]
    parts.append("### Response format status\n\n" + table(
        ["run"] + status_keys, [[r.name] + [str(r.metrics["thought"]["status"].get(s, 0)) for s in status_keys]
                                for r in runs]))

    plots.length_histograms(out / "plots" / "length-histogram.png", "Reasoning length distribution",
                            {r.name: r.metrics["thought"]["length_histogram"] for r in runs}, "tokens")
    parts.append("![length histogram](plots/length-histogram.png)")

    bucket_rows = []
    for r in runs:
        for b in r.metrics["thought"]["accuracy_by_length"]:
            bucket_rows.append([r.name, b["range"], str(b["n"]), acc_cell(b), str(b["verdicts"]["truncated"])])
    plots.accuracy_by_bucket(out / "plots" / "accuracy-by-length.png", "Accuracy by reasoning length",
                             {r.name: r.metrics["thought"]["accuracy_by_length"] for r in runs})
    parts.append("### Accuracy by reasoning-length bucket\n\n" + table(
        ["run", "tokens", "n", "accuracy % ± s.e.", "truncated"], bucket_rows)
        + "\n\n![accuracy by length](plots/accuracy-by-length.png)")

    verdict_rows = []
    for r in runs:
        for v, d in r.metrics["thought"]["length_by_verdict"].items():
            verdict_rows.append([r.name, v, str(d["count"]), num(d["mean"]), num(d["median"])])
    if verdict_rows:
        parts.append("### Length by verdict\n\n" + table(["run", "verdict", "n", "mean len", "median"], verdict_rows))

    for key in _keys(runs, "length_by"):
        values: list[str] = []
        for r in runs:
            values += [v for v in r.metrics["thought"]["length_by"].get(key, {}) if v not in values]
        rows = [[v] + [num((r.metrics["thought"]["length_by"].get(key, {}).get(v) or {}).get("mean")) for r in runs]
                for v in values]
        png = f"plots/length-by-{key}.png"
        plots.grouped_bars(out / png, f"Mean reasoning length by {key}", values,
                           {r.name: [(r.metrics["thought"]["length_by"].get(key, {}).get(v) or {}).get("mean")
                                     for v in values] for r in runs}, ylabel="tokens")
        parts.append(f"### Mean reasoning length by {key}\n\n" + table([key] + [r.name for r in runs], rows)
                     + f"\n\n![length by {key}]({png})")

    phrases: dict[str, dict[str, float]] = {}
    for r in runs:
        by_phrase = r.metrics["thought"]["reflections"]["by_phrase"]
        n = max(1, r.metrics["thought"]["n"])
        phrases[r.name] = {p: c / n for p, c in list(by_phrase.items())[:TOP_PHRASES]}
    plots.horizontal_counts(out / "plots" / "reflections.png", "Reflection phrases per response", phrases,
                            "occurrences per response")
    rows = [[r.name, ", ".join(f"{p} ({c})" for p, c in list(r.metrics["thought"]["reflections"]["by_phrase"].items())
                               [:TOP_PHRASES]) or "—"] for r in runs]
    parts.append("### Reflection phrases (most frequent)\n\n" + table(["run", "phrase (count)"], rows)
                 + "\n\n![reflections](plots/reflections.png)")
    return "\n\n".join(parts)


def _keys(runs: list[RunView], field: str) -> list[str]:
    keys: list[str] = []
    for r in runs:
        keys += [k for k in r.metrics["thought"].get(field, {}) if k not in keys]
    return keys


def table2(runs: list[RunView]) -> dict[str, Any]:
    """Our runs in the paper's Table 2 layout: one row per label, one column per benchmark (accuracy %)."""
    rows: dict[str, dict[str, Any]] = {}
    for r in runs:
        col = r.info.get("paper_column")
        if col not in paper.BENCHMARK_COLUMNS or r.captioned:
            continue
        rows.setdefault(r.label, {})[col] = {"accuracy": r.metrics["accuracy"], "stderr": r.metrics["stderr"],
                                             "n": r.metrics["n"], "split": r.info.get("split")}
    out = {}
    for label, cols in rows.items():
        avg = paper.mean_of([None if cols.get(c) is None or cols[c]["accuracy"] is None else 100 * cols[c]["accuracy"]
                             for c in paper.BENCHMARK_COLUMNS])
        out[label] = {"columns": cols, "average": avg}
    return out


def _section_table2(runs: list[RunView]) -> str:
    ours = table2(runs)
    header = ["model", "Num. Data Textual", "Num. Data Visual"] + list(paper.BENCHMARK_COLUMNS) + ["Average"]
    rows = []
    for label, row in ours.items():
        cells = []
        for c in paper.BENCHMARK_COLUMNS:
            b = row["columns"].get(c)
            cells.append("—" if b is None
                         else f"**{pct(b['accuracy'])}** ± {pct(b['stderr'])} (n={b['n']}, {b['split']})")
        rows.append([f"{label} (this run)", "—", "—"] + cells + [num(row["average"], 2)])
    for p in paper.paper_rows():
        rows.append([f"{p.model} (paper)", p.textual or "—", p.visual or "—"]
                    + [num(p.score(c), 1) for c in paper.BENCHMARK_COLUMNS] + [num(p.average, 2)])
    note = ("Paper rows: Virgo (arXiv 2501.01904 v2) Table 2; MathVerse testmini without text-only, MathVision test, "
            "OlympiadBench without theorem proving, MMMU validation. Num. Data: the paper's fine-tuning data "
            "(textual long thoughts, visual long thoughts); a run does not know its model's training data (—). "
            "Our Average is shown only when all four benchmarks were run (the paper's plain mean).")
    return "## Main results (paper Table 2 layout)\n\n" + note + "\n\n" + table(header, rows)


def _section_mmmu_difficulty(runs: list[RunView]) -> str:
    mm = [r for r in runs if "topic_difficulty" in r.metrics["breakdowns"]]
    if not mm:
        return ""
    cols = ["Easy", "Medium", "Hard"]
    rows = [[f"{r.name} (this run)"] + [acc_cell(r.metrics["breakdowns"]["topic_difficulty"].get(c)) for c in cols]
            + [acc_cell(r.metrics)] for r in mm]
    rows += [[f"{m} (paper)"] + [num(v[c], 2) for c in cols] + [num(v["Overall"], 1)] for m, v in paper.TABLE3.items()]
    counts = ", ".join(f"{k} {v}" for k, v in paper.MMMU_DIFFICULTY_COUNTS.items())
    return ("## MMMU by difficulty (paper Table 3 layout)\n\n"
            f"The paper's bins on the 900 validation items: {counts}.\n\n"
            + table(["model"] + cols + ["Overall"], rows))


def perception_table(runs: list[RunView]) -> list[dict[str, Any]]:
    """Image runs paired with caption runs of the same label and benchmark."""
    pairs = []
    for r in runs:
        if r.captioned:
            continue
        cap = next((c for c in runs if c.captioned and c.label == r.label and c.benchmark == r.benchmark), None)
        if cap is not None:
            pairs.append({"label": r.label, "benchmark": r.benchmark, "images": r.metrics["accuracy"],
                          "captions": cap.metrics["accuracy"], "n_images": r.metrics["n"],
                          "n_captions": cap.metrics["n"]})
    return pairs


def _section_perception(runs: list[RunView]) -> str:
    pairs = perception_table(runs)
    if not pairs:
        return ""
    rows = [[p["label"], p["benchmark"], pct(p["images"]), pct(p["captions"]),
             num(None if p["images"] is None or p["captions"] is None else 100 * (p["images"] - p["captions"]), 1)]
            for p in pairs]
    text = ("## Perception versus reasoning (images replaced by captions)\n\n"
            "The same items with every image replaced by a caption. With captions, every model reads the same "
            "description, so perception is held fixed: a gain of one model over another that survives captioning "
            "comes from reasoning; a gain that vanishes came through perception.\n\n")
    text += table(["model", "benchmark", "with images %", "with captions %", "images − captions"], rows)
    by_bench: dict[str, list[dict]] = defaultdict(list)
    for p in pairs:
        by_bench[p["benchmark"]].append(p)
    gains = []
    for bench, ps in by_bench.items():
        base = ps[0]
        for p in ps[1:]:
            if None in (p["images"], p["captions"], base["images"], base["captions"]):
                continue
            gi, gc = 100 * (p["images"] - base["images"]), 100 * (p["captions"] - base["captions"])
            gains.append([bench, f"{p['label']} vs {base['label']}", f"{gi:+.1f}", f"{gc:+.1f}", f"{gi - gc:+.1f}"])
    if gains:
        text += "\n\n" + table(["benchmark", "comparison", "gain with images", "gain with captions (reasoning)",
                                "difference (perception)"], gains)
    return text


def _section_paper_for_single(run: RunView) -> str:
    col = run.info.get("paper_column")
    if col not in paper.BENCHMARK_COLUMNS:
        return ""
    rows = [[f"{run.label} (this run)", f"**{pct(run.metrics['accuracy'])}** ± {pct(run.metrics['stderr'])}"]]
    rows += [[f"{p.model} (paper)", num(p.score(col), 1)] for p in paper.paper_rows() if p.score(col) is not None]
    return f"## {col}: next to the paper's Table 2\n\n" + table(["model", f"{col} %"], rows)


def _section_manifest(runs: list[RunView]) -> str:
    rows = []
    for r in runs:
        m = r.manifest
        git = m.get("git") or {}
        model = m.get("model") or {}
        tmpl = m.get("template") or {}
        data = m.get("data") or {}
        dec = m.get("decoding") or {}
        decoding = ", ".join(f"{k}={dec[k]}" for k in ("max_new_tokens", "temperature", "top_p", "top_k", "min_p",
                                                        "repetition_penalty", "presence_penalty",
                                                        "frequency_penalty", "n", "seed", "prompt") if k in dec)
        if dec.get("stop"):  # JSON: a stop string may hold a newline or a table's "|"
            decoding += ", stop=" + json.dumps(dec["stop"]).replace("|", "\\|")
        rows.append([r.name, _commits(git, m.get("sessions") or []),
                     (model.get("sha256") or "—")[:12], decoding or "—", (tmpl.get("prompt_sha256") or "—")[:12],
                     str(len(data.get("files") or {})) + " files, " + str((data.get("images") or {}).get("count", 0))
                     + " images", (m.get("packages") or {}).get("transformers") or "—"])
    return ("## Reproducibility\n\nFull details in each run's `manifest.json` (package versions, per-file model "
            "hashes, decoding settings, template hashes, git commit, data file hashes, and every (re)start of the "
            "run under `sessions`).\n\n"
            + table(["run", "git", "model sha256", "decoding", "prompt sha256", "data", "transformers"], rows))


def _commits(first: dict[str, Any], sessions: list[dict[str, Any]]) -> str:
    # The first start's commit, then any other commit a resume or rescore ran with, in order.
    def short(g: dict[str, Any]) -> str:
        return (g.get("commit") or "—")[:12] + (" (dirty)" if g.get("dirty") else "")

    seen = [short(first)]
    for s in sessions:
        c = short(s.get("git") or {})
        if c not in seen:
            seen.append(c)
    text = " → ".join(seen)
    return text + f" ({len(sessions)} sessions)" if len(sessions) > 1 else text


# ----------------------------------------------------------------------------- entry point

def _view_link(out: Path) -> str:
    """A link to the long-thought viewer page written beside the report (`virgo view`), when there is one."""
    if not (out / "view.html").is_file():
        return ""
    return ("Browse every item's thought, verdict and image in [view.html](view.html) (opens offline; "
            "`virgo view RUN OTHER_RUN` puts two runs side by side).")


def render_report(run_dirs: list[str | Path], out_dir: str | Path | None = None,
                  labels: dict[str, str] | None = None, show_k: list[int] | None = None) -> Path:
    """Write ``report.md``, ``report.json`` and ``plots/*.png``; returns the markdown path.

    One run without ``out_dir`` writes into the run folder itself (a sweep folder: into the sweep folder).
    ``show_k``: the k of pass@k / maj@k / mean@k shown (default 1, 2, 4, ..., n).
    """
    if not run_dirs:
        raise ValueError("no run folders given")
    labels = labels or {}
    sweeps = [Path(d) for d in run_dirs if layout.is_sweep(d)]
    dirs = [rd for d in run_dirs for rd in (layout.run_dirs(d) if layout.is_sweep(d) else [Path(d)])]
    runs = [load_run(d, labels.get(str(d)) or labels.get(Path(d).name)) for d in dirs]
    single = len(run_dirs) == 1
    out = Path(out_dir) if out_dir is not None else (Path(run_dirs[0]) if single else Path("virgo-report"))
    out.mkdir(parents=True, exist_ok=True)

    title = (f"# Evaluation report: {runs[0].name}" if len(runs) == 1
             else f"# Evaluation report: {len(runs)} runs")
    parts = [title, _view_link(out), sections.section_sweeps(sweeps, out), _section_overview(runs)]
    parts.append(_section_table2(runs) if len(runs) > 1 else _section_paper_for_single(runs[0]))
    parts += [official.render([(r.name, r.metrics) for r in runs]), sections.section_sampling(runs, show_k),
              sections.section_seeds(runs), _section_mmmu_difficulty(runs), _section_perception(runs),
              _section_verdicts(runs, out), _section_breakdowns(runs, out), _section_thought(runs, out),
              _section_manifest(runs)]
    md = out / "report.md"
    md.write_text("\n\n".join(s for s in parts if s) + "\n", encoding="utf-8")
    summary = {
        "runs": [{"dir": str(r.dir), "label": r.label, "benchmark": r.benchmark, "split": r.info.get("split"),
                  "model": r.info.get("model"), "ablation": r.info.get("ablation"), "metrics": r.metrics}
                 for r in runs],
        "table2": table2(runs),
        "perception": perception_table(runs),
        "seeds": sections.seed_groups(runs),
        "sweeps": [layout.read_table(d) for d in sweeps],
        "paper": {"table2": [vars(p) for p in paper.paper_rows()], "table3": paper.TABLE3},
        "plots": sorted(str(p.relative_to(out)) for p in (out / "plots").glob("*.png")),
    }
    (out / "report.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False), encoding="utf-8")
    return md
