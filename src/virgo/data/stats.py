"""``virgo data stats``: what a long-thought dataset holds.

Counts by kind, domain, modality (text-only or with images) and source; how complete the responses are
(``virgo.thought`` classes: complete, truncated, unclosed_solution, no_solution, malformed, plain); thought and
solution lengths in tokens (p50/p90/p99/max, per domain, a histogram PNG); reflection phrases from the shared
lexicon (``virgo.data.analytics``); with ``bins``, the domain mix of each thought-length bin (the paper's
Figure 3).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from virgo.data.analytics import count_reflections, length_summary, load_tokenizer, section_lengths, sections
from virgo.data.select import Bin, bin_label, bin_of, domain_key
from virgo.records import LongThoughtExample, SFTExample
from virgo.thought import Status

LENGTH_FIELDS = ("thought", "solution")


@dataclass
class DatasetStats:
    summary: dict[str, Any]
    lengths: dict[str, list[int]] = field(default_factory=dict)  # per LENGTH_FIELDS, for plots


def compute_stats(records: Sequence[LongThoughtExample | SFTExample], *, tokenizer: Any = None,
                  lexicon: Sequence[str] | None = None, bins: Sequence[Bin] | None = None,
                  progress: bool = False) -> DatasetStats:
    counter = load_tokenizer(tokenizer)
    secs = [sections(r) for r in records]
    domains = [domain_key(r.domain) for r in records]

    per_record = {name: section_lengths(records, name, counter, progress=progress) for name in LENGTH_FIELDS}
    lengths = {name: [c for c in v if c is not None] for name, v in per_record.items()}

    by_domain_len: dict[str, list[int]] = {}
    for d, c in zip(domains, per_record["thought"]):
        if c is not None:
            by_domain_len.setdefault(d, []).append(c)

    phrase_totals: Counter = Counter()
    with_any = 0
    for r, s in zip(records, secs):
        # Reflection is counted in the thought when there is one, else in the whole response.
        counts = count_reflections(s.thought if s.thought is not None else r.response, lexicon)
        phrase_totals.update(counts)
        with_any += any(counts.values())
    lex = list(count_reflections("", lexicon))
    n = len(records)
    n_images = [len(r.images) for r in records]
    summary: dict[str, Any] = {
        "n": n,
        "kinds": {"long_thought": sum(isinstance(r, LongThoughtExample) for r in records),
                  "sft": sum(isinstance(r, SFTExample) for r in records)},
        "domains": dict(Counter(domains).most_common()),
        "modality": {"text_only": sum(1 for k in n_images if k == 0), "with_images": sum(1 for k in n_images if k)},
        "images_per_record": {str(k): v for k, v in sorted(Counter(n_images).items())},
        "sources": dict(Counter(r.source or "none" for r in records).most_common()),
        "status": {st.value: sum(1 for s in secs if s.status is st) for st in Status},
        "tokenizer": counter.label,
        "lengths": {name: length_summary(v) for name, v in lengths.items()},
        "thought_lengths_by_domain": {d: length_summary(v) for d, v in sorted(by_domain_len.items())},
        "reflections": {
            "lexicon": lex,
            "by_phrase": {p: phrase_totals[p] for p in sorted(lex, key=lambda p: (-phrase_totals[p], lex.index(p)))},
            "total": sum(phrase_totals.values()),
            "mean_per_record": sum(phrase_totals.values()) / n if n else None,
            "share_with_any": with_any / n if n else None,
        },
    }
    if bins:
        table: dict[str, Counter] = {bin_label(b): Counter() for b in bins}
        outside = Counter()
        for d, c in zip(domains, per_record["thought"]):
            b = bin_of(c, bins)
            (outside if b is None else table[bin_label(bins[b])])[d] += 1
        summary["thought_bins"] = {label: dict(c.most_common()) for label, c in table.items()}
        summary["thought_bins_outside"] = dict(outside.most_common())
    return DatasetStats(summary, lengths)


def plot_lengths(stats: DatasetStats, path: str | Path, title: str = "") -> Path:
    """Histograms of thought and solution lengths, with p50/p90 marked, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    unit = "tokens" if stats.summary["tokenizer"].startswith("tokenizer") else "approx. tokens"
    fig, axes = plt.subplots(1, len(LENGTH_FIELDS), figsize=(5 * len(LENGTH_FIELDS), 3.6))
    for ax, name in zip(axes, LENGTH_FIELDS):
        values = stats.lengths.get(name, [])
        s = stats.summary["lengths"][name]
        if values:
            ax.hist(values, bins=40, color="#4c72b0")
            for q, style in (("p50", "--"), ("p90", ":")):
                ax.axvline(s[q], color="#c44e52", linestyle=style, label=f"{q} = {s[q]}")
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(f"{name} length (n={s['count']})")
        ax.set_xlabel(unit)
        ax.set_ylabel("records")
    fig.suptitle(title or f"lengths ({stats.summary['tokenizer']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1 else f"{v:,.1f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def render_stats(stats: DatasetStats, console: Any, title: str = "") -> None:
    """Rich tables of a DatasetStats."""
    from rich.table import Table

    s = stats.summary
    n = s["n"]

    def pct(k: int) -> str:
        return f"{100 * k / n:.1f}%" if n else "-"

    def counts_table(name: str, counts: dict[str, int]) -> Table:
        t = Table(title=name, title_justify="left")
        t.add_column(name.split(" ")[0])
        t.add_column("records", justify="right")
        t.add_column("share", justify="right")
        for k, v in counts.items():
            t.add_row(k, _fmt(v), pct(v))
        return t

    console.print(f"[bold]{title or 'dataset'}[/bold]: {n:,} records; lengths in {s['tokenizer']}")
    for name, key in (("kind", "kinds"), ("modality", "modality"), ("domain", "domains"),
                      ("source", "sources"), ("status (thought format)", "status")):
        console.print(counts_table(name, s[key]))

    t = Table(title="lengths", title_justify="left")
    for col in ("section", "count", "mean", "min", "p50", "p90", "p99", "max"):
        t.add_column(col, justify="left" if col == "section" else "right")
    for name, summ in s["lengths"].items():
        t.add_row(name, *(_fmt(summ[k]) for k in ("count", "mean", "min", "p50", "p90", "p99", "max")))
    for d, summ in s["thought_lengths_by_domain"].items():
        t.add_row(f"thought, {d}", *(_fmt(summ[k]) for k in ("count", "mean", "min", "p50", "p90", "p99", "max")))
    console.print(t)

    r = s["reflections"]
    share = "-" if r["share_with_any"] is None else f"{100 * r['share_with_any']:.1f}%"
    t = Table(title=f"reflection phrases: {r['total']:,} in all, {_fmt(r['mean_per_record'])} per record, "
                    f"{share} of records with any", title_justify="left")
    t.add_column("phrase")
    t.add_column("count", justify="right")
    t.add_column("per record", justify="right")
    for p, c in r["by_phrase"].items():
        t.add_row(p, _fmt(c), _fmt(c / n if n else None))
    console.print(t)

    if "thought_bins" in s:
        doms = list(s["domains"])
        t = Table(title="domains per thought-length bin", title_justify="left")
        t.add_column("bin")
        for d in doms:
            t.add_column(d, justify="right")
        t.add_column("total", justify="right")
        rows = list(s["thought_bins"].items()) + [("outside / no thought", s["thought_bins_outside"])]
        for label, c in rows:
            t.add_row(label, *(_fmt(c.get(d, 0)) for d in doms), _fmt(sum(c.values())))
        console.print(t)
