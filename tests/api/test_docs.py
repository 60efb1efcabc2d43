"""The API docs page is served from the package's own Swagger UI, never from another host."""

from __future__ import annotations

import re

from ridgerider.api.docs import ASSETS

from .conftest import API


def test_docs_page_and_every_asset_it_names_come_from_this_service(make_client) -> None:
    with make_client(workers=0) as c:  # outside development mode: the docs need no token
        page = c.get(f"{API}/docs")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        urls = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(
            r"url: '([^']+)'", page.text
        )
        assert len(urls) == 4, urls  # stylesheet, icon, bundle, the OpenAPI document
        assert not re.search(r"https?://", page.text), "the page names another host"
        for url in urls:
            assert url.startswith(f"{API}/"), url
            r = c.get(url)
            assert r.status_code == 200, url
        bundle = c.get(f"{API}/docs/assets/swagger-ui-bundle.js")
        assert bundle.content == (ASSETS / "swagger-ui-bundle.js").read_bytes()
