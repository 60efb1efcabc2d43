"""Problems, health, readiness and metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache
from typing import Any, cast

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ridgerider.api.auth import CurrentUser, ServiceDep
from ridgerider.problems import available
from ridgerider.schemas import ProblemPublic

__all__ = ["health_router", "router"]

router = APIRouter(tags=["problems"])
health_router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@cache
def _problems() -> list[ProblemPublic]:
    out = []
    for name, cls in sorted(available().items()):
        try:  # problem defaults are constants of the class (they never read the instance)
            defaults = cls.default_settings(cast(Any, None))
        except Exception:
            defaults = {}
        out.append(
            ProblemPublic(
                name=name,
                summary=cls.summary,
                params_schema=cls.params_schema(),
                default_settings=defaults,
            )
        )
    return out


@router.get(
    "/problems",
    operation_id="list_problems",
    response_model=list[ProblemPublic],
    responses={401: {"description": "missing, invalid or revoked token"}},
)
def list_problems(user: CurrentUser) -> list[ProblemPublic]:
    """The installed problems (the only ones a job may name) with their parameter schemas."""
    del user
    return _problems()


@health_router.get("/healthz", operation_id="healthz")
def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


def _check(name: str, fn: Callable[[], object]) -> str:
    """``"ok"``, or ``"error"`` with the exception logged here.

    The exception is never sent: the probe is unauthenticated, and a driver's message names
    internal hosts and ports.
    """
    try:
        fn()
    except Exception:
        log.exception("readiness check %r failed", name)
        return "error"
    return "ok"


@health_router.get(
    "/readyz",
    operation_id="readyz",
    responses={503: {"description": "a dependency is unreachable"}},
)
def readyz(service: ServiceDep) -> JSONResponse:
    """Database, frontier and workers reachable (503 otherwise).

    Each check is ``"ok"`` or ``"error"``; why one failed is in the service's log only.
    """
    archive = service.archive
    checks = {"database": _check("database", lambda: archive.storage.list_jobs(limit=1))}
    client = getattr(archive.frontier, "redis", None)
    if client is not None:
        checks["frontier"] = _check("frontier", client.ping)
    else:  # the frontier is the database
        checks["frontier"] = checks["database"]
    pool = service.pool
    if pool is None:
        checks["workers"] = "ok (none in this process)"
    elif (alive := pool.alive()) == pool.size:
        checks["workers"] = "ok"
    else:
        log.error("readiness check 'workers' failed: %d of %d alive", alive, pool.size)
        checks["workers"] = "error"
    ready = all(v.startswith("ok") for v in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, 200 if ready else 503)


@health_router.get("/metrics", operation_id="metrics", response_class=PlainTextResponse)
def metrics(service: ServiceDep) -> Response:
    """Prometheus text format (see ``ridgerider.api.metrics``); unauthenticated, no secrets.

    Requests and latencies by route template, jobs, workers, the queue, leases held, event
    streams and their pollers.
    """
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
