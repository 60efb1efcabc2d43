"""What the browser tests need, checked before their harness is imported.

A browser test module starts with ``pytestmark = MARKS`` and ``require()``: without Debian's
``chromium`` its tests are skipped, without Playwright or uvicorn the whole module is, each
saying why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"

MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"{CHROMIUM} is absent (apt-get install -y chromium chromium-driver)",
    ),
]


def require() -> None:
    """Skip the importing module where Playwright or uvicorn is not installed."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    pytest.importorskip("uvicorn", reason="uvicorn is not installed")
