"""The FastAPI application: ``create_app(settings)``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI

import ridgerider
from ridgerider.api.docs import mount_docs
from ridgerider.api.errors import AllowHeaderMiddleware, BodyLimitMiddleware, install_handlers
from ridgerider.api.httpcache import TreeGZipMiddleware
from ridgerider.api.metrics import Metrics, MetricsMiddleware
from ridgerider.api.routes import crossplay, events, export, jobs, system, tree
from ridgerider.api.state import PoolFactory, lifespan
from ridgerider.config import Settings
from ridgerider.dashboard import mount_dashboard
from ridgerider.problems import available

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"


def create_app(
    settings: Settings | None = None, *, pool_factory: PoolFactory | None = None
) -> FastAPI:
    """The service app; ``settings`` default to the ``RIDGERIDER_*`` environment.

    ``pool_factory`` starts the workers (default: ``settings.workers`` threads in this process).
    The archive is opened, running jobs recovered and workers started when the app starts
    (its lifespan), and all of it is stopped when it shuts down.
    """
    settings = settings or Settings()
    metrics = Metrics()
    app = FastAPI(
        title="ridgerider",
        version=ridgerider.__version__,
        description="Ridge Rider search as a service: submit jobs, watch them, read their trees.",
        lifespan=lifespan(settings, pool_factory, metrics),
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served from the package's own assets (mount_docs), not a CDN
        redoc_url=None,
    )
    mount_docs(app, f"{API_PREFIX}/docs", f"{API_PREFIX}/openapi.json")
    api = APIRouter(prefix=API_PREFIX)
    for module in (jobs, tree, export, events, system, crossplay):
        api.include_router(module.router)
    api.include_router(system.health_router)
    app.include_router(api)
    app.include_router(system.health_router, include_in_schema=False)  # probes at the root too
    install_handlers(app)
    app.add_middleware(TreeGZipMiddleware)  # innermost: routes see plain bodies, metrics all
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(AllowHeaderMiddleware, paths=lambda: app.openapi()["paths"])
    _document_problems(app)
    mount_dashboard(app)  # the web page at / and /jobs/{id}
    return app


def _document_problems(app: FastAPI) -> None:
    """Make the schema list the installed problems: ``JobCreate.problem`` is their enum."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            field = spec["components"]["schemas"]["JobCreate"]["properties"]["problem"]
            field["enum"] = sorted(available())
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
