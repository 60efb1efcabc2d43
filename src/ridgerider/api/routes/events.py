"""``/jobs/{id}/events``: server-sent events of a job's progress until it finishes.

Events: ``status`` (the job's status changed), ``progress`` (nodes and steps of the finished
tree grew), ``riding`` (the rides in flight moved: how many and their steps so far, as their
workers' heartbeats last reported), ``solution`` (a new solution, in expansion order); each
``data`` is JSON. The stream ends after the job reaches a final status, or after ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from ridgerider.api.auth import CurrentUser, ServiceDep, owned_job
from ridgerider.api.convert import solution_out
from ridgerider.api.routes.jobs import ERRORS, JobId
from ridgerider.api.state import Service

__all__ = ["router"]

router = APIRouter(tags=["jobs"])


def _sse(kind: str, data: dict[str, Any], event_id: int) -> str:
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data)}\n\n"


async def _stream(
    service: Service, request: Request, job_id: int, timeout_s: float
) -> AsyncIterator[str]:
    storage = service.archive.storage
    status, nodes, solutions, n = None, -1, 0, 0
    riding: tuple[int, int] = (0, 0)
    deadline = time.monotonic() + timeout_s
    while True:
        job = await run_in_threadpool(storage.get_job, job_id)
        if job is None:
            return
        if job.nodes != nodes:
            nodes = job.nodes
            n += 1
            yield _sse("progress", {"nodes": job.nodes, "steps": job.steps}, n)
            found = await run_in_threadpool(storage.solutions, job_id)
            for sol in found[solutions:]:
                n += 1
                yield _sse("solution", solution_out(sol).model_dump(mode="json"), n)
            solutions = len(found)
        if not job.finished:
            rides = await run_in_threadpool(storage.rides, job_id)
            now = (len(rides), sum(r.steps for r in rides))
            if now != riding:
                riding = now
                n += 1
                yield _sse("riding", {"rides": now[0], "steps": now[1]}, n)
        if job.status != status:
            status = job.status
            n += 1
            yield _sse("status", {"status": status, "stopped_by": job.stopped_by}, n)
        if job.finished or time.monotonic() > deadline or await request.is_disconnected():
            return
        await asyncio.sleep(service.settings.events_poll_s)


@router.get(
    "/jobs/{job_id}/events",
    operation_id="job_events",
    response_class=StreamingResponse,
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "events"}},
)
def job_events(
    job_id: JobId,
    request: Request,
    service: ServiceDep,
    user: CurrentUser,
    timeout_s: Annotated[
        float, Query(gt=0, le=86_400, description="close the stream after")
    ] = 3600,
) -> StreamingResponse:
    """Progress of a job as server-sent events (see the module docstring)."""
    owned_job(service, user, job_id)
    return StreamingResponse(
        _stream(service, request, job_id, timeout_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
