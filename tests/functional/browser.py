"""A real headless Chromium driven through selenium: Debian's ``chromium`` and its ``chromium-driver``.

Both binaries are given to selenium explicitly, so Selenium Manager never looks for (or downloads) a
browser or a driver: the test runs exactly what the machine has, or skips with the reason.
Every console message the page logs is kept (``goog:loggingPrefs``), so a test can insist that the page
raised no error, a Content-Security-Policy violation included.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Fit the grid and a dialog; a fixed size keeps lazy loading (what is in the viewport) deterministic.
WINDOW = "1280,900"


@dataclass(frozen=True)
class Installation:
    browser: Path
    driver: Path


def find_installation() -> Installation | str:
    """This machine's Chromium and chromedriver, or the reason (a ``str``) they cannot be used."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        names = " and ".join(str(path) for path in missing)
        return f"{names} not installed (make test installs Debian's chromium and chromium-driver)"
    return Installation(CHROMIUM, CHROMEDRIVER)


def start_chromium(installation: Installation, profile: Path, log_path: Path) -> webdriver.Chrome:
    """A new headless Chromium with a profile of its own (nothing shared between tests: no
    sessionStorage, no cache), its driver logging to ``log_path``."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(installation.browser)
    for argument in (
        "--headless=new",
        f"--window-size={WINDOW}",
        f"--user-data-dir={profile}",
        "--disable-dev-shm-usage",  # containers have a small /dev/shm
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",  # no requests of its own beside the page's
        "--disable-component-update",
    ):
        options.add_argument(argument)
    if os.geteuid() == 0:  # Chromium refuses to run its sandbox as root
        options.add_argument("--no-sandbox")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(installation.driver), log_output=str(log_path))
    return webdriver.Chrome(options=options, service=service)


def browser_log(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """The console entries logged since the last call: ``{level, message, source, timestamp}``."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return entries
