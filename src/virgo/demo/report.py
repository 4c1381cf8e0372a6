"""The demo's report: a table in the paper's Table 2 layout, the findings checked plainly, and plots."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from virgo.demo.data import EVAL_SETS

_LABELS = {"base": "base (direct answers)", "virgo-t": "Virgo-T (D_T, text only)",
           "virgo-sd": "Virgo-SD (D_SD)", "virgo-t+sd": "Virgo-T∪SD (D_T ∪ D_SD)",
           "oracle-visual": "control: perfect visual teacher (D_QVQ stand-in)"}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def average(entry: dict[str, Any]) -> float:
    return sum(entry[s]["accuracy"] for s in EVAL_SETS) / len(EVAL_SETS)


def findings(results: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """(claim, holds, numbers) for each claim of the paper the demo tests; never tuned to pass."""
    v = results["variants"]
    out: list[tuple[str, bool, str]] = []
    base, vt = v.get("base"), v.get("virgo-t")
    if base and vt:
        for s in ("visual_hard", "visual_easy"):
            b, t = base[s], vt[s]
            diff = t["accuracy"] - b["accuracy"]
            se = math.sqrt((b["stderr"] or 0) ** 2 + (t["stderr"] or 0) ** 2)
            holds = diff >= 0.10 and diff > 2 * se
            out.append((f"Virgo-T beats the base on held-out {s.replace('_', ' ')} questions by >= 10 points and "
                        f"> 2 standard errors", holds,
                        f"{_pct(t['accuracy'])} vs {_pct(b['accuracy'])} ({100 * diff:+.1f} points, 2 SE = "
                        f"{200 * se:.1f})"))
        base_len = max(base["visual_hard"]["mean_completion_tokens"], 1e-9)
        think_len = vt["visual_hard"]["mean_thought_tokens"]
        out.append(("Virgo-T thinks on visual questions (mean thought >= 3x the base's answer length) though it "
                    "never saw a visual thought", vt["visual_hard"]["think_rate"] > 0.5 and think_len >= 3 * base_len,
                    f"thinks on {_pct(vt['visual_hard']['think_rate'])}% of visual hard questions, mean thought "
                    f"{think_len:.0f} tokens vs base answer {base_len:.0f} tokens"))
        fid = vt["visual_hard"]["perception_fidelity"]
        out.append(("Virgo-T's visual thoughts restate the chart correctly (perception fidelity >= 50%)",
                    fid is not None and fid >= 0.5, f"{_pct(fid)}% of restatements match the chart"))
    sd = v.get("virgo-sd")
    if base and sd:
        b, s_ = base["visual_hard"], sd["visual_hard"]
        out.append(("Virgo-SD beats the base on held-out visual hard questions", s_["accuracy"] > b["accuracy"],
                    f"{_pct(s_['accuracy'])} vs {_pct(b['accuracy'])}"))
    elif base:
        out.append(("Virgo-SD beats the base on held-out visual hard questions", False,
                    f"not trained: {results.get('skipped', {}).get('virgo-sd', 'missing')}"))
    return out


def table_rows(results: dict[str, Any], *, short: bool = False) -> list[list[str]]:
    rows = []
    for name, entry in results["variants"].items():
        cells = [name if short else _LABELS.get(name, name)]
        for s in EVAL_SETS:
            e = entry[s]
            cells.append(f"{_pct(e['accuracy'])} ± {_pct(e['stderr'])}")
        cells.append(_pct(average(entry)))
        vh = entry["visual_hard"]
        cells += [_pct(vh["think_rate"]), f"{vh['mean_thought_tokens']:.0f}", _pct(vh["perception_fidelity"])]
        rows.append(cells)
    return rows


HEADER = ["model", "visual easy", "visual hard", "text", "average", "thinks % (visual hard)",
          "thought tokens (visual hard)", "perception fidelity %"]


def plot(results: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["variants"])
    paths = []
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(EVAL_SETS)
    for i, s in enumerate(EVAL_SETS):
        accs = [100 * results["variants"][n][s]["accuracy"] for n in names]
        errs = [100 * (results["variants"][n][s]["stderr"] or 0) for n in names]
        ax.bar([k + i * width for k in range(len(names))], accs, width, yerr=errs, label=s.replace("_", " "))
    ax.set_xticks([k + width for k in range(len(names))], names)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Toy Virgo, seed {results['seed']}: held-out accuracy (± 1 SE)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "accuracy.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i, s in enumerate(EVAL_SETS):
        lens = [results["variants"][n][s]["mean_completion_tokens"] for n in names]
        ax.bar([k + i * width for k in range(len(names))], lens, width, label=s.replace("_", " "))
    ax.set_xticks([k + width for k in range(len(names))], names)
    ax.set_ylabel("mean output tokens")
    ax.set_title("Output length per variant (thought + solution)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "length.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def write_report(results: dict[str, Any], out: Path) -> Path:
    plots = plot(results, out)
    lines = [f"# Toy Virgo: text-only long-thought tuning of a tiny Qwen2-VL (seed {results['seed']}"
             f"{', quick' if results['quick'] else ''})", "",
             "Accuracy (%) ± 1 standard error on held-out questions (charts never trained on, text twins included); "
             "greedy decoding. Thinking and perception columns are for the visual hard set.", "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(results)]
    for name, why in results.get("skipped", {}).items():
        lines.append(f"\n{name}: not trained ({why}).")
    sd = results.get("self_distillation")
    if sd:
        lines.append(f"\nSelf-distillation: Virgo-T rolled out {sd['samples']} samples on {sd['problems']} visual "
                     f"training problems ({_pct(sd['rollout_accuracy'])}% of rollouts correct); kept "
                     f"{sd['kept']} problems (the shortest correct rollout each).")
    lines += ["", "## Does the paper's finding reproduce here?", ""]
    for claim, holds, numbers in findings(results):
        lines.append(f"- **{'yes' if holds else 'NO'}**: {claim}: {numbers}.")
    lines += ["", "Verdicts per variant and set (correct / wrong / no answer / truncated):", ""]
    for name, entry in results["variants"].items():
        cells = [f"{s}: " + "/".join(str(entry[s]["verdicts"][k]) for k in ("correct", "wrong", "no_answer",
                                                                            "truncated")) for s in EVAL_SETS]
        lines.append(f"- {name}: " + "; ".join(cells))
    lines += ["", *[f"![{p.stem}]({p.name})" for p in plots], "",
              f"Wall clock: {results['total_seconds']:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in results['seconds'].items())}).",
              "Every number comes from `results.json`; generations and grades of every evaluation are under `eval/`."]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def print_table(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Toy Virgo (seed {results['seed']}): held-out accuracy % (± SE); last three columns: "
                        "visual hard")
    for h in ("model", "visual easy", "visual hard", "text", "avg", "thinks %", "thought tok", "percept. %"):
        table.add_column(h, justify="left" if h == "model" else "right", no_wrap=True)
    for r in table_rows(results, short=True):
        table.add_row(*r)
    console = Console()
    if not console.is_terminal:  # logs and pipes: do not squeeze the table into 80 columns
        console = Console(width=120)
    console.print(table)
    for claim, holds, numbers in findings(results):
        console.print(f"[{'green' if holds else 'red'}]{'yes' if holds else 'NO '}[/] {claim}: {numbers}")
