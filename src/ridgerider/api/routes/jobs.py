"""``/jobs``: submit (idempotently), list, read, cancel and extend jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Query, Response, status
from fastapi.concurrency import run_in_threadpool

from ridgerider.api.auth import CurrentUser, ServiceDep, owned_job, owner_filter, visible
from ridgerider.api.convert import job_out, model_response
from ridgerider.api.errors import field_error
from ridgerider.core.errors import SettingsError
from ridgerider.schemas import (
    ID_MAX,
    MAX_NAME,
    MAX_TAG,
    TAG_PATTERN,
    JobCreate,
    JobExtend,
    JobPublic,
    JobsPublic,
    JobStatusText,
)
from ridgerider.services import jobs
from ridgerider.services.submission import submit_spec

__all__ = ["ERRORS", "JobId", "router"]

router = APIRouter(tags=["jobs"])
JobId = Annotated[int, Path(ge=1, le=ID_MAX, description="job id")]
IDEMPOTENCY = Header(
    alias="Idempotency-Key",
    min_length=1,
    max_length=128,
    pattern=r"^[\x21-\x7e]+$",
    description="a retried submission with the same key returns the first job",
)
ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "missing, invalid or revoked token"},
    404: {"description": "no such job (or another user's)"},
    422: {"description": "invalid input; `detail` names each field"},
}
BODY_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"description": "the body is not JSON"},
    413: {"description": "request body too large"},
}


@router.post(
    "/jobs",
    operation_id="submit_job",
    status_code=status.HTTP_201_CREATED,
    response_model=JobPublic,
    responses={
        **ERRORS,
        200: {"model": JobPublic, "description": "a retry: the first job with this key"},
        409: {"description": "the Idempotency-Key was used for a different request"},
        **BODY_ERRORS,
    },
)
async def submit_job(
    body: JobCreate,
    service: ServiceDep,
    user: CurrentUser,
    response: Response,
    idempotency_key: Annotated[str | None, IDEMPOTENCY] = None,
) -> JobPublic:
    """Submit a search; it starts as soon as a worker is free."""
    archive = service.archive
    async with service.submit_slots:
        job, created = await run_in_threadpool(
            submit_spec,
            archive.storage,
            archive.frontier,
            body.problem,
            body.params,
            body.settings.given(),
            seed=body.seed,
            wall_time_s=body.wall_time_s,
            accelerator=body.accelerator,
            owner_id=user.id,
            idempotency_key=idempotency_key,
            limits=service.limits,
            name=body.name,
            tags=tuple(body.tags),
        )
    if created:
        service.metrics.job_submitted()
    else:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/api/v1/jobs/{job.id}"
    return job_out(job)


@router.get("/jobs", operation_id="list_jobs", response_model=JobsPublic, responses=ERRORS)
def list_jobs(
    service: ServiceDep,
    user: CurrentUser,
    status: Annotated[JobStatusText | None, Query(description="only jobs in this status")] = None,
    name: Annotated[
        str | None,
        Query(min_length=1, max_length=MAX_NAME, description="part of the name (any case)"),
    ] = None,
    tag: Annotated[
        str | None, Query(max_length=MAX_TAG, pattern=TAG_PATTERN, description="one tag")
    ] = None,
    problem: Annotated[
        str | None, Query(min_length=1, max_length=64, description="the problem's name")
    ] = None,
    after: Annotated[
        int | None, Query(ge=1, le=ID_MAX, description="next_after of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> JobsPublic:
    """The caller's jobs, newest first, a page at a time, each with its count of solutions.

    An administrator (and development mode) sees every user's jobs.

    ``name`` matches any part of a job's name, ignoring case; ``tag``, ``problem`` and
    ``status`` match exactly. Filters combine (all must hold).
    """
    storage = service.archive.storage
    page = storage.list_jobs(
        owner_id=owner_filter(user),
        status=status,
        cursor=after,
        limit=limit,
        name=name,
        tag=tag,
        problem=problem,
    )
    counts = storage.count_solutions(j.id for j in page.items)
    items = [job_out(j, counts[j.id]) for j in page.items]
    return JobsPublic(items=items, next_after=page.next_cursor)


@router.get("/jobs/{job_id}", operation_id="get_job", response_model=JobPublic, responses=ERRORS)
def get_job(job_id: JobId, service: ServiceDep, user: CurrentUser) -> Response:
    """One job, with its count of solutions."""
    job, solutions = service.archive.storage.get_job_counted(job_id) or (None, 0)  # one query
    return model_response(job_out(visible(user, job_id, job), solutions))


@router.delete(
    "/jobs/{job_id}",
    operation_id="delete_job",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=ERRORS,
)
def delete_job(job_id: JobId, service: ServiceDep, user: CurrentUser) -> Response:
    """Delete a job: its nodes, solutions, parameter blobs and events.

    A queued or running job is cancelled first (in the same call); a worker still riding one
    of its branches has its result refused.
    """
    owned_job(service, user, job_id)
    if not jobs.delete(service.archive.storage, job_id):
        raise HTTPException(404, f"job {job_id} not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/jobs/{job_id}/cancel",
    operation_id="cancel_job",
    response_model=JobPublic,
    responses={**ERRORS, 409: {"description": "the job already finished"}},
)
def cancel_job(job_id: JobId, service: ServiceDep, user: CurrentUser) -> JobPublic:
    """Cancel a queued or running job (its finished nodes stay readable)."""
    job = owned_job(service, user, job_id)
    storage = service.archive.storage
    if not jobs.cancel(storage, job_id):
        raise HTTPException(409, f"job {job_id} is {job.status}: nothing to cancel")
    return job_out(owned_job(service, user, job_id))


@router.post(
    "/jobs/{job_id}/extend",
    operation_id="extend_job",
    response_model=JobPublic,
    responses={**ERRORS, **BODY_ERRORS},
)
def extend_job(
    job_id: JobId, body: JobExtend, service: ServiceDep, user: CurrentUser
) -> JobPublic | Response:
    """Raise a job's budgets (they can only grow); a job a budget stopped runs on."""
    owned_job(service, user, job_id)
    archive = service.archive
    try:
        jobs.extend(
            archive.storage,
            archive.frontier,
            job_id,
            max_nodes=body.max_nodes,
            max_steps=body.max_steps,
            wall_time_s=body.wall_time_s,
        )
    except SettingsError as exc:
        return field_error(("body", exc.field), exc.message)
    return job_out(owned_job(service, user, job_id))
