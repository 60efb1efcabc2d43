"""The API docs page renders in headless Chromium with every request to another host refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"{CHROMIUM} is absent (apt-get install -y chromium chromium-driver)",
    ),
]

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytest.importorskip("uvicorn")

from dashboard.browser import Server, browser, db_url, dev_server, page  # noqa: E402

__all__ = ["browser", "db_url", "dev_server", "page"]  # fixtures


def test_swagger_ui_renders_offline(page: Any, dev_server: Server) -> None:
    foreign: list[str] = []

    def only_this_host(route: Any) -> None:
        if route.request.url.startswith(dev_server.url):
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_host)
    page.goto(dev_server.url + "/api/v1/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert page.inner_text(".swagger-ui .info .title").startswith("ridgerider")
    operations = page.locator(".opblock-summary-path").count()
    assert operations >= 10  # every documented route is listed
    assert foreign == []
