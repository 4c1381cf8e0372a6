"""The paper's published numbers (Virgo, arXiv 2501.01904 v2), shown next to our runs in reports.

Source: the paper digest (/work/shared/docs/virgo-paper.md, section 4). Table 2 is the main result
(accuracy %, four benchmarks, plain mean as Average); Table 3 is MMMU by difficulty. v1 differences
are kept as notes. ``None`` = not reported ("-" in the paper).
"""

from __future__ import annotations

from dataclasses import dataclass

BENCHMARK_COLUMNS = ("MathVerse", "MathVision", "OlympiadBench", "MMMU")


@dataclass(frozen=True)
class PaperRow:
    model: str
    scores: dict[str, float | None]  # column -> accuracy %
    average: float | None
    textual: str | None = None  # "Num. Data Textual"
    visual: str | None = None  # "Num. Data Visual"
    group: str = ""  # "baseline", "72B", "7B"
    note: str = ""

    def score(self, column: str) -> float | None:
        return self.scores.get(column)


def _row(model, mv, mvis, ob, mmmu, avg, *, textual=None, visual=None, group="", note="") -> PaperRow:
    return PaperRow(model, dict(zip(BENCHMARK_COLUMNS, (mv, mvis, ob, mmmu))), avg, textual, visual, group, note)


# Table 2 - main results (v2).
TABLE2: tuple[PaperRow, ...] = (
    _row("GPT-4o", None, 30.4, 25.9, 69.1, None, group="baseline"),
    _row("Gemini-Pro", 35.3, 19.2, 4.2, 65.8, 31.13, group="baseline"),
    _row("Claude-3.5-Sonnet", None, 38.0, None, 70.4, None, group="baseline"),
    _row("OpenAI o1", None, None, None, 77.3, None, group="baseline"),
    _row("QVQ-72B-preview", 41.5, 38.2, 27.9, 66.0, 43.40, group="baseline",
         note="re-evaluated by the authors; v1: MathVision 35.9, average 42.83"),
    _row("Qwen2-VL-72B-Instruct", 41.3, 26.1, 11.2, 64.5, 35.78, group="72B"),
    _row("Virgo-72B (D_T)", 48.4, 38.8, 29.9, 64.6, 45.43, textual="5K", group="72B"),
    _row("Virgo-72B (D_QVQ)", 37.6, 37.7, 25.0, 62.6, 40.73, visual="6.6K", group="72B"),
    _row("Virgo-72B (D_SD)", 47.4, 35.0, 27.2, 65.8, 43.85, visual="7K", group="72B"),
    _row("Virgo-72B (D_T + D_SD)", 48.1, 38.6, 28.5, 65.0, 45.05, textual="5K", visual="7K", group="72B"),
    _row("Qwen2-VL-7B-Instruct", 24.6, 16.3, 5.3, 54.1, 25.08, group="7B",
         note="Tables 4-5 give 24.0 / 15.6 / 5.3 / 54.1"),
    _row("Virgo-7B (D_T)", 32.2, 24.3, 9.8, 47.1, 28.35, textual="5K", group="7B"),
    _row("Virgo-7B (D_QVQ)", 29.2, 20.5, 9.0, 48.3, 26.75, visual="6.6K", group="7B"),
    _row("Virgo-7B (D_SD)", 37.5, 23.1, 10.3, 50.7, 30.40, visual="7K", group="7B"),
    _row("Virgo-7B (D_T + D_SD)", 36.7, 24.0, 10.2, 46.7, 29.40, textual="5K", visual="7K", group="7B"),
)

# Table 3 - MMMU accuracy by difficulty bin (295 easy / 424 medium / 181 hard validation items).
MMMU_DIFFICULTY_COUNTS = {"Easy": 295, "Medium": 424, "Hard": 181}
TABLE3: dict[str, dict[str, float]] = {
    "QVQ-72B-preview": {"Easy": 76.95, "Medium": 65.80, "Hard": 48.62, "Overall": 66.0},
    "Qwen2-VL-72B-Instruct": {"Easy": 74.58, "Medium": 62.26, "Hard": 50.28, "Overall": 64.5},
    "Virgo-72B (D_T)": {"Easy": 72.88, "Medium": 62.97, "Hard": 54.70, "Overall": 64.6},
    "Virgo-72B (D_T + D_SD)": {"Easy": 74.58, "Medium": 61.79, "Hard": 56.91, "Overall": 65.0},
}


def paper_rows(groups: tuple[str, ...] | None = None) -> list[PaperRow]:
    """Table 2 rows, optionally only some groups ("baseline", "72B", "7B")."""
    return [r for r in TABLE2 if groups is None or r.group in groups]


def mean_of(values: list[float | None]) -> float | None:
    """The plain mean the paper uses for Average; None unless every value is present."""
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)
