"""How fast a `virgo view` page opens and filters in a real browser (Debian's headless Chromium), by page size.

Pages are built from synthetic runs (`virgo.view.synthetic`: the eval run layout, seeded thoughts with reflection
phrases and forced "Wait"s, one small figure per problem) and opened from disk (file://), as a user opens them:

- ``10k``: 10,000 items, one run (the issue's synthetic page);
- ``mathvision``: the full MathVision test, 3,040 problems x ``--samples`` samples, two runs side by side, with
  thoughts of ``--words`` words (Virgo-7B's MathVision thoughts run to thousands of tokens).

For each page: its build time and size, then (best and median of ``--repeat`` fresh loads) the time from
navigation to the first rendered list (``driver.get`` returning plus the page's own ready mark), a verdict filter,
the "runs disagree" filter, opening the first item (until it is rendered), and the first full-text search (which
reads and parses every thought first).

    python benchmarks/view_open.py [--pages 10k mathvision] [--samples 1] [--words 300 3000] [--repeat 3]

Needs `chromium` and `chromium-driver` (apt-get) and selenium (the test extra).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

SEARCH_MS = 400  # the search box waits 120 ms after the last key: give it time, then read the page's own timing


def build(kind: str, out: Path, samples: int, words: tuple[int, int]) -> tuple[Path, float]:
    from virgo.view.data import build_view_data
    from virgo.view.page import write_page
    from virgo.view.synthetic import _image, synthetic_run

    fig = out / "fig.png"
    _image(fig, 3)
    t0 = time.perf_counter()
    if kind == "10k":
        runs = [synthetic_run(10_000, seed=0, words=(60, 400), image_paths=[str(fig)], label="model")]
    else:
        runs = [synthetic_run(3040, seed=s, samples=samples, words=words, image_paths=[str(fig)], label=name)
                for s, name in ((0, "base"), (1, "virgo"))]
    page = write_page(build_view_data(runs), out / f"{kind}.html")
    return page, time.perf_counter() - t0


def measure(driver, page: Path) -> dict[str, float]:
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from virgo.view.browser import wait_ready

    driver.get("about:blank")
    t0 = time.perf_counter()
    driver.get(page.resolve().as_uri())
    wait_ready(driver, timeout=600)
    out = {"open s": time.perf_counter() - t0,
           "ready ms": float(driver.execute_script("return document.body.dataset.readyMs"))}
    Select(driver.find_element("id", "f-verdict-0")).select_by_value("wrong")
    out["verdict filter ms"] = float(driver.execute_script("return document.body.dataset.filterMs"))
    if driver.find_elements("id", "f-compare"):
        Select(driver.find_element("id", "f-compare")).select_by_value("differ")
        out["disagree filter ms"] = float(driver.execute_script("return document.body.dataset.filterMs"))
    driver.execute_script("document.body.dataset.itemMs = ''; document.querySelector('#list .row.item').click();")
    WebDriverWait(driver, 600).until(lambda d: d.execute_script("return document.body.dataset.itemMs"))
    out["open item ms"] = float(driver.execute_script("return document.body.dataset.itemMs"))
    driver.find_element("id", "f-search").send_keys("overlap along one edge")
    time.sleep(SEARCH_MS / 1000)
    WebDriverWait(driver, 600).until(lambda d: not d.find_element("id", "count").text.startswith("reading"))
    # a folder page reads every thought file first (loadMs), then filters (filterMs)
    out["first search ms"] = float(driver.execute_script(
        "return Number(document.body.dataset.loadMs || 0) + Number(document.body.dataset.filterMs)"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", nargs="+", default=["10k", "mathvision"], choices=["10k", "mathvision"])
    ap.add_argument("--samples", type=int, default=1, help="samples per MathVision problem")
    ap.add_argument("--words", type=int, nargs=2, default=[300, 3000], help="thought length range (words)")
    ap.add_argument("--repeat", type=int, default=3, help="fresh loads per page; best and median reported")
    a = ap.parse_args()

    from virgo.view.browser import chromium

    with tempfile.TemporaryDirectory() as tmp, chromium() as driver:
        for kind in a.pages:
            page, built = build(kind, Path(tmp), a.samples, tuple(a.words))
            runs = [measure(driver, page) for _ in range(a.repeat)]
            print(f"\n{kind}: {page.stat().st_size / 1e6:.1f} MB page, built in {built:.1f} s; "
                  f"best / median of {a.repeat} loads:")
            for key in runs[0]:
                values = [r[key] for r in runs if key in r]
                print(f"  {key:>20}: {min(values):9.1f} / {statistics.median(values):9.1f}")


if __name__ == "__main__":
    main()
