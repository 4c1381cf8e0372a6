"""Headless Chromium through Selenium, for the viewer's screenshots, tests and benchmark.

Debian's ``chromium`` and ``chromium-driver`` are used, at fixed paths: no browser is downloaded at run time
(the driver path is given explicitly, so selenium-manager never runs). The flags keep Chromium off the network:
on a machine without one it otherwise stalls on connection attempts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("VIRGO_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("VIRGO_CHROMEDRIVER", "/usr/bin/chromedriver")
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars")


class BrowserMissing(RuntimeError):
    """Chromium, its driver or Selenium is not installed."""

    user_facing = True


def check_browser() -> None:
    """Raise BrowserMissing, with the command that installs what is missing."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    if missing:
        raise BrowserMissing(f"{' and '.join(missing)} not found: install Debian's Chromium and its driver "
                             f"(as root: {INSTALL})")
    try:
        import selenium  # noqa: F401
    except ImportError:
        raise BrowserMissing('selenium is not installed: pip install -e ".[test]" (or pip install selenium)') from None


@contextmanager
def chromium(width: int = 1400, height: int = 900) -> Iterator[Any]:
    """A headless Chromium WebDriver with a fresh profile and a ``width`` x ``height`` viewport; quit (and its
    profile removed) on exit."""
    check_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="virgo-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.set_page_load_timeout(120)
        # The window size counts the browser's own bars: fix the page's viewport (and screenshots) to the size asked.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_ready(driver: Any, timeout: float = 60.0) -> None:
    """Wait until the viewer page has rendered its list (``body[data-ready]``)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
