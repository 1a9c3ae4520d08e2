"""Debian's headless Chromium through Playwright, for the browser tests.

Skipped where Playwright or Chromium is missing, failed under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest


def missing(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"The browser test needs {reason} in CI.", pytrace=False)
    pytest.skip(reason)


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched headless Chromium (``/usr/bin/chromium``)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright (pip install playwright)")
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        missing("Chromium at /usr/bin/chromium (apt-get install chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable)
        try:
            yield browser
        finally:
            browser.close()
