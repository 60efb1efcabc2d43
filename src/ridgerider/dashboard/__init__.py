"""The dashboard: a static single-page app drawing jobs and their solution trees.

Everything it shows comes from the REST API under ``/api/v1`` (the page only holds a token in
the browser session). :func:`mount_dashboard` serves the page at ``/`` and at every deep link
``/jobs/{id}``, ``/crossplay/{id}`` (a cross-play run: its progress, then its figure) and
``/compare?jobs=3,5,8`` (two to eight jobs side by side), and its assets (no build step, no
network access) under :data:`ASSETS_PREFIX`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.responses import FileResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = ["ASSETS_PREFIX", "STATIC_DIR", "mount_dashboard"]

STATIC_DIR = Path(__file__).parent / "static"
"""The page and its scripts and styles, shipped as package data."""
ASSETS_PREFIX = "/ui"
"""URL prefix of the assets (``/ui/app.js``, ...)."""


def _index(request: Any) -> FileResponse:
    """The single page; the script reads the address to show the jobs list or one job."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def mount_dashboard(app: Any) -> None:
    """Serve the dashboard from a Starlette (or FastAPI) ``app``: ``/``, deep links, assets.

    The routes are left out of the OpenAPI schema; ``{id}`` only matches digits, so a bad
    address falls through to the app's 404.
    """
    app.router.routes.extend(
        [
            *(
                Route(path, _index, methods=["GET", "HEAD"], include_in_schema=False)
                for path in ("/", "/jobs/{job_id:int}", "/crossplay/{run_id:int}", "/compare")
            ),
            Mount(ASSETS_PREFIX, app=StaticFiles(directory=STATIC_DIR), name="dashboard-assets"),
        ]
    )
