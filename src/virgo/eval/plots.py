"""PNG plots for reports (matplotlib, headless). Each function draws one figure from plain data."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers/CI
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _plt().close(fig)
    return path


def _finish(fig, ax, path: Path, title: str, n_series: int, xlabel: str | None = None,
            ylabel: str | None = None) -> Path:
    """Axis labels, title, a legend when several series share the axes; then save."""
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if n_series > 1:
        ax.legend(fontsize=7)
    return _save(fig, path)


def grouped_bars(path: Path, title: str, categories: list[str], series: dict[str, list[float | None]],
                 errors: dict[str, list[float | None]] | None = None, ylabel: str = "accuracy (%)") -> Path:
    """One group of bars per category, one bar per series (run); optional error bars."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(categories) * max(1, len(series)) + 2), 3.6))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [j + i * width - 0.4 + width / 2 for j in range(len(categories))]
        ys = [v if v is not None else 0.0 for v in values]
        err = None
        if errors and name in errors:
            err = [e if e is not None else 0.0 for e in errors[name]]
        ax.bar(xs, ys, width, label=name, yerr=err, capsize=2)
    ax.set_xticks(range(len(categories)))
    ax.set_xticklabels(categories, rotation=30 if len(categories) > 4 else 0,
                       ha="right" if len(categories) > 4 else "center", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=7)
    return _save(fig, path)


def stacked_verdicts(path: Path, title: str, runs: list[str], verdicts: dict[str, list[int]]) -> Path:
    """One stacked bar per run: correct / wrong / no_answer / truncated counts, kept apart."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(runs) + 2), 3.4))
    bottom = [0] * len(runs)
    colors = {"correct": "#2e7d32", "wrong": "#c62828", "no_answer": "#9e9e9e", "truncated": "#f9a825"}
    for verdict, counts in verdicts.items():
        ax.bar(runs, counts, bottom=bottom, label=verdict, color=colors.get(verdict))
        bottom = [b + c for b, c in zip(bottom, counts)]
    ax.set_ylabel("generations")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    ax.tick_params(axis="x", labelsize=8)
    return _save(fig, path)


def length_histograms(path: Path, title: str, hists: dict[str, dict[str, list]], xlabel: str) -> Path:
    """Overlaid step histograms of reasoning length, one per run."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for name, h in hists.items():
        if not h["counts"]:
            continue
        ax.stairs(h["counts"], h["edges"], label=name, fill=len(hists) == 1, alpha=0.8)
    return _finish(fig, ax, path, title, len(hists), xlabel, "generations")


def accuracy_by_bucket(path: Path, title: str, runs: dict[str, list[dict[str, Any]]]) -> Path:
    """Accuracy per reasoning-length bucket, one line per run (points sized by item count)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    labels: list[str] = []
    for buckets in runs.values():
        for b in buckets:
            if b["range"] not in labels:
                labels.append(b["range"])
    order = {lab: i for i, lab in enumerate(sorted(labels, key=lambda s: float(s.strip("(>] ").split(",")[0])))}
    for name, buckets in runs.items():
        xs = [order[b["range"]] for b in buckets]
        ys = [100 * b["accuracy"] for b in buckets]
        ax.plot(xs, ys, marker="o", label=name)
        for x, y, b in zip(xs, ys, buckets):
            ax.annotate(f"n={b['n']}", (x, y), fontsize=6, textcoords="offset points", xytext=(0, 4))
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels(sorted(order, key=order.get), fontsize=7, rotation=20)
    return _finish(fig, ax, path, title, len(runs), "reasoning length (tokens)", "accuracy (%)")


def horizontal_counts(path: Path, title: str, counts: dict[str, dict[str, float]], xlabel: str) -> Path:
    """Horizontal bars per phrase (rows), one bar per run; used for reflection-phrase counts."""
    plt = _plt()
    phrases: list[str] = []
    for c in counts.values():
        for k in c:
            if k not in phrases:
                phrases.append(k)
    if not phrases:
        phrases = ["(none)"]
    fig, ax = plt.subplots(figsize=(6, max(2.5, 0.3 * len(phrases) * max(1, len(counts)) + 1)))
    height = 0.8 / max(1, len(counts))
    for i, (name, c) in enumerate(counts.items()):
        ys = [j + i * height - 0.4 + height / 2 for j in range(len(phrases))]
        ax.barh(ys, [c.get(p, 0) for p in phrases], height, label=name)
    ax.set_yticks(range(len(phrases)))
    ax.set_yticklabels(phrases, fontsize=7)
    ax.invert_yaxis()
    return _finish(fig, ax, path, title, len(counts), xlabel)


def budget_curves(path: Path, title: str, curves: dict[str, list[dict[str, Any]]]) -> Path:
    """Accuracy against the thinking tokens actually used, one line per sweep, each point labelled by its budget."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, rows in curves.items():
        pts = [(r["mean_thought_tokens"], 100 * r["accuracy"], r["budget"]) for r in rows
               if r.get("mean_thought_tokens") is not None and r.get("accuracy") is not None]
        if not pts:
            continue
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
        for x, y, b in pts:
            ax.annotate(f"{b}", (x, y), fontsize=6, textcoords="offset points", xytext=(0, 4))
    return _finish(fig, ax, path, title, len(curves), "mean thinking tokens used", "accuracy (%)")
