"""The API docs page renders in headless Chromium with every request to another host refused."""

from __future__ import annotations

from typing import Any

from dashboard.needs import MARKS, require

pytestmark = MARKS
require()


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
