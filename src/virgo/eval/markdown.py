"""The few Markdown helpers every report section uses (one place: tables, percentages, numbers)."""

from __future__ import annotations


def pct(x: float | None, digits: int = 1) -> str:
    """A fraction as a percentage (``0.123`` -> ``12.3``); ``—`` for None."""
    return "—" if x is None else f"{100 * x:.{digits}f}"


def num(x: float | None, digits: int = 0) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)
