"""Render a viewer page to PNG in headless Chromium: ``python -m virgo.view.screenshot PAGE OUT.png``.

``--hash`` presets the page's filters and opens an item, as a link would, e.g. ``--hash "compare=b_only&open=0"``
(the first item the second run gets right and the first does not). The README's screenshot of the demo's Virgo-T vs
base view is made with this command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from virgo.config.cli import command
from virgo.config.fields import opt
from virgo.view.browser import chromium, wait_ready


def screenshot(page: str | Path, out: str | Path, *, fragment: str = "open=0", width: int = 1400,
               height: int = 900) -> Path:
    """Open ``page`` from disk with ``#fragment``, wait for it to render, and save a PNG of the window."""
    page, out = Path(page).resolve(), Path(out)
    if not page.is_file():
        raise FileNotFoundError(f"{page}: no such page")
    out.parent.mkdir(parents=True, exist_ok=True)
    with chromium(width, height) as driver:
        driver.get(page.as_uri() + ("#" + fragment.lstrip("#") if fragment else ""))
        wait_ready(driver)
        if not driver.save_screenshot(str(out)):
            raise RuntimeError(f"Chromium could not save a screenshot of {page}")
    return out


@dataclass
class ScreenshotConfig:
    """`python -m virgo.view.screenshot`: which page, where the PNG goes, the window and the preset view."""

    page: str = opt(positional=True, path=True, help="A page written by `virgo view`.")
    out: str = opt(positional=True, path=True, help="The PNG to write.")
    hash: str = opt("open=0", help="URL fragment: filters to preset and the item to open (q, verdict0, verdict1, "
                    "compare=differ|a_only|b_only, subset, level, min, max, sort, open=N).")
    width: int = opt(1400, ge=200, le=8000, help="Window width in pixels.")
    height: int = opt(900, ge=200, le=8000, help="Window height in pixels.")


def run_screenshot(cfg: ScreenshotConfig) -> None:
    path = screenshot(cfg.page, cfg.out, fragment=cfg.hash, width=cfg.width, height=cfg.height)
    click.echo(f"wrote {path}")


main = command("screenshot", ScreenshotConfig, run_screenshot, help=__doc__.split("\n\n")[0])

if __name__ == "__main__":  # run as a script: use the module's own copy, so its options carry its real name
    from virgo.view.screenshot import main as _main

    _main(prog_name="python -m virgo.view.screenshot")
