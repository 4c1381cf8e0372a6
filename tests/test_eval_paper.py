"""The paper's published numbers as data: every Average is the plain mean of its row, Table 3 matches its bins."""

from __future__ import annotations

import pytest

from virgo.eval import paper


@pytest.mark.parametrize("row", [r for r in paper.TABLE2 if r.average is not None], ids=lambda r: r.model)
def test_table2_average_is_the_plain_mean(row):
    assert paper.mean_of([row.score(c) for c in paper.BENCHMARK_COLUMNS]) == pytest.approx(row.average, abs=0.006)


def test_table2_has_the_headline_rows():
    virgo = next(r for r in paper.TABLE2 if r.model == "Virgo-72B (D_T)")
    base = next(r for r in paper.TABLE2 if r.model == "Qwen2-VL-72B-Instruct")
    assert [virgo.score(c) for c in paper.BENCHMARK_COLUMNS] == [48.4, 38.8, 29.9, 64.6]
    assert [base.score(c) for c in paper.BENCHMARK_COLUMNS] == [41.3, 26.1, 11.2, 64.5]
    assert len(paper.paper_rows(("7B",))) == 5 and paper.mean_of([1.0, None]) is None


@pytest.mark.parametrize("model", list(paper.TABLE3))
def test_table3_cells_are_counts_over_the_bins(model):
    # 295 / 424 / 181 items: each published percentage is k / n for a whole k.
    for level, n in paper.MMMU_DIFFICULTY_COUNTS.items():
        k = paper.TABLE3[model][level] * n / 100
        assert abs(k - round(k)) < 0.03, (model, level, k)
