"""Summaries of grades: accuracy, and counts per verdict and per deciding rule (never merged)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from virgo.records import VERDICTS, Grade


def summarize(grades: Iterable[Grade]) -> dict[str, Any]:
    """``{"n", "accuracy", "verdicts": {correct, wrong, no_answer, truncated}, "graded_by", "extracted_by"}``.

    Accuracy is correct / n, where n counts every verdict (a truncated or unanswered response is not
    dropped from the denominator). All four verdicts are always present, zero or not.
    """
    grades = list(grades)
    verdicts = Counter(g.verdict for g in grades)
    n = len(grades)
    return {
        "n": n,
        "accuracy": verdicts["correct"] / n if n else 0.0,
        "verdicts": {v: verdicts[v] for v in VERDICTS},
        "graded_by": dict(Counter(g.graded_by for g in grades).most_common()),
        "extracted_by": dict(Counter(g.extracted_by or "-" for g in grades).most_common()),
    }


def render_summary(summary: dict[str, Any], title: str = "grades"):
    """A rich table: accuracy in the title, then counts per verdict, per graded_by and per extracted_by."""
    from rich.table import Table

    n = summary["n"]
    headline = f"{title}: n = {n}, accuracy = {100 * summary['accuracy']:.2f}%"
    t = Table(title=headline, title_justify="left", min_width=len(headline))  # the headline on one line
    for col, justify in (("", "left"), ("", "left"), ("count", "right"), ("share", "right")):
        t.add_column(col, justify=justify, no_wrap=True)
    for section in ("verdicts", "graded_by", "extracted_by"):
        for i, (k, v) in enumerate(summary.get(section, {}).items()):
            t.add_row(section.rstrip("s") if i == 0 else "", k, str(v), f"{100 * v / n:.1f}%" if n else "-",
                      end_section=i == len(summary[section]) - 1)
    return t
