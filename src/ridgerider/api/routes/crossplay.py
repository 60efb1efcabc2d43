"""``/crossplay``: zero-shot coordination runs (submit, list, status, report).

A request is validated (422 naming the field, nothing stored), stored, and run in the
background by :class:`~ridgerider.services.crossplay_runs.CrossplayExecutor`, each run in a
process of its own; this router's lifespan starts the executor, resumes the runs an earlier
process left unfinished and stops it on shutdown (killing the run in progress, which the next
start runs again). Runs belong to the user who submitted them, like jobs, and a user may have
``crossplay_max_runs`` of them queued or running (429 beyond).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi import status as http
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ridgerider.api.auth import CurrentUser, ServiceDep, owner_filter
from ridgerider.api.convert import finite
from ridgerider.api.errors import field_error
from ridgerider.api.routes.jobs import BODY_ERRORS, IDEMPOTENCY
from ridgerider.api.state import Service
from ridgerider.schemas import (
    ID_MAX,
    CrossplayCreate,
    CrossplayPublic,
    CrossplayReportPublic,
    CrossplaysPublic,
)
from ridgerider.services import accounts
from ridgerider.services import crossplay_runs as runs
from ridgerider.services.crossplay import CrossplayInputError
from ridgerider.services.storage.records import UserRecord
from ridgerider.services.storage.sql import SQLStorage

__all__ = ["router"]


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the executor and resume unfinished runs; stop it (at once) at the end."""
    service = cast(Service, app.state.service)
    executor = runs.CrossplayExecutor(_storage(service))
    app.state.crossplay = executor
    await run_in_threadpool(executor.resume)
    try:
        yield
    finally:
        await run_in_threadpool(executor.stop)


def known_query(request: Request) -> None:
    """Refuse query parameters a route does not declare (422 naming the first one).

    The routes here declare their query parameters themselves (none in dependencies).
    """
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    known = {p.alias for p in dependant.query_params} if dependant else set()
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        error = {"loc": ("query", unknown[0]), "msg": "unknown query parameter", "type": "extra"}
        raise RequestValidationError([error])


router = APIRouter(tags=["crossplay"], lifespan=lifespan, dependencies=[Depends(known_query)])
RunId = Annotated[int, Path(ge=1, le=ID_MAX, description="cross-play id")]
ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "missing, invalid or revoked token"},
    404: {"description": "no such cross-play (or another user's)"},
    422: {"description": "invalid input; `detail` names each field"},
}


def _storage(service: Service) -> SQLStorage:
    return cast(SQLStorage, service.archive.storage)


def _out(row: dict[str, Any]) -> CrossplayPublic:
    req = row["request"]
    return CrossplayPublic(
        id=row["id"],
        problem=req["problem"],
        params=finite(req["params"]),
        replicates=req["replicates"],
        fingerprints=req["fingerprints"],
        seed=req["seed"],
        status=row["status"],
        done=row["done"],
        progress=min(1.0, row["done"] / req["replicates"]),
        error=row["error"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )


def _owned(service: Service, user: UserRecord, run_id: int) -> dict[str, Any]:
    row = runs.get_run(_storage(service), run_id)
    if row is None or not accounts.may_see(user, row["owner_id"]):
        raise HTTPException(404, f"cross-play {run_id} not found")
    return row


@router.post(
    "/crossplay",
    operation_id="submit_crossplay",
    status_code=http.HTTP_201_CREATED,
    response_model=CrossplayPublic,
    responses={
        **ERRORS,
        200: {"model": CrossplayPublic, "description": "a retry: the first run with this key"},
        409: {"description": "the Idempotency-Key was used for a different request"},
        429: {
            "description": "the caller has `crossplay_max_runs` runs queued or running: "
            "`detail` says so, `limit` names the setting, `max` is its value"
        },
        **BODY_ERRORS,
    },
)
async def submit_crossplay(
    body: CrossplayCreate,
    request: Request,
    service: ServiceDep,
    user: CurrentUser,
    response: Response,
    idempotency_key: Annotated[str | None, IDEMPOTENCY] = None,
) -> CrossplayPublic | JSONResponse:
    """Cross-play ``replicates`` independent RR runs of a two-player game (in the background).

    Each user may have ``crossplay_max_runs`` runs queued or running; one more is a 429.
    """
    try:
        row, created = await run_in_threadpool(
            runs.create_run,
            _storage(service),
            body.model_dump(),
            owner_id=user.id,
            idempotency_key=idempotency_key,
            max_params=service.limits.max_params,
            max_active=service.settings.crossplay_max_runs,
        )
    except CrossplayInputError as exc:
        return field_error(("body", *exc.field.split(".")), exc.message)
    except runs.IdempotencyReuseError as exc:
        return JSONResponse({"detail": str(exc)}, 409)
    except runs.RunLimitError as exc:
        limit = {"limit": "crossplay_max_runs", "max": exc.limit, "active": exc.active}
        return JSONResponse({"detail": str(exc), **limit}, 429)
    if created:
        request.app.state.crossplay.submit(row["id"])
    else:
        response.status_code = http.HTTP_200_OK
    response.headers["Location"] = f"/api/v1/crossplay/{row['id']}"
    return _out(row)


@router.get(
    "/crossplay", operation_id="list_crossplay", response_model=CrossplaysPublic, responses=ERRORS
)
def list_crossplay(
    service: ServiceDep,
    user: CurrentUser,
    after: Annotated[
        int | None, Query(ge=1, le=ID_MAX, description="next_after of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> CrossplaysPublic:
    """The caller's cross-play runs, newest first, a page at a time."""
    rows, cursor = runs.list_runs(_storage(service), owner_filter(user), after=after, limit=limit)
    return CrossplaysPublic(items=[_out(r) for r in rows], next_after=cursor)


@router.get(
    "/crossplay/{run_id}",
    operation_id="get_crossplay",
    response_model=CrossplayPublic,
    responses=ERRORS,
)
def get_crossplay(run_id: RunId, service: ServiceDep, user: CurrentUser) -> CrossplayPublic:
    """One run: its status and progress (replicates done)."""
    return _out(_owned(service, user, run_id))


@router.get(
    "/crossplay/{run_id}/result",
    operation_id="get_crossplay_result",
    response_model=CrossplayReportPublic,
    responses={**ERRORS, 409: {"description": "not finished, or failed (`detail` says why)"}},
)
def get_crossplay_result(
    run_id: RunId, service: ServiceDep, user: CurrentUser
) -> CrossplayReportPublic:
    """The report (as ``ridgerider crossplay --json`` writes it) once the run succeeded."""
    row = _owned(service, user, run_id)
    if row["status"] != "succeeded":
        why = f": {row['error']}" if row["error"] else ""
        raise HTTPException(409, f"cross-play {run_id} is {row['status']}{why}")
    return CrossplayReportPublic.model_validate(row["result"])
