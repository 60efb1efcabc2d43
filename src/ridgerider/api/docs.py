"""The interactive API docs (Swagger UI) from assets shipped in the package, not a CDN.

FastAPI's default docs page loads Swagger UI from a CDN, which a machine without internet
access (or a browser with a strict content policy) cannot reach. :func:`mount_docs` serves the
same page with the bundled copy (``docs_assets/``; its README says which release it is).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS", "mount_docs"]

ASSETS = Path(__file__).with_name("docs_assets")
"""Swagger UI's bundle, stylesheet, icon and licences."""


def mount_docs(app: FastAPI, docs_url: str, openapi_url: str) -> None:
    """Serve Swagger UI for ``openapi_url`` at ``docs_url``, its assets below it."""
    assets = f"{docs_url}/assets"
    app.mount(assets, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get(docs_url, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon-32x32.png",
        )
