"""``/jobs/{id}/events``: server-sent events of a job as its tree grows, until it finishes.

Events (each ``data`` is JSON):

* ``node`` — a node joined the finished tree: the node as ``GET /jobs/{id}/tree`` lists it
  (id, parent_id, key, fingerprint, rank, loss, eigenvalue, is_solution, metrics, ...), in rank
  order, each exactly once;
* ``solution`` — a solution leaf (as ``GET /jobs/{id}/solutions`` lists it), just before its
  ``node`` event;
* ``status`` — the job's status changed (``status``, ``stopped_by`` for the final one); the
  stream ends after a final status;
* ``riding`` — the rides in flight moved (how many, their steps so far as the workers'
  heartbeats last reported): live only, it carries no id;
* ``reconnect`` — this client fell more than ``events_queue`` events behind and is dropped;
  ``data.last_event_id`` is where to resume (the stream ends).

Every durable event has an ``id:``, a cursor over the tree's ranks and the job's event log
(see :mod:`ridgerider.api.feeds`); a client that reconnects with ``Last-Event-ID`` gets what
followed, nothing twice and nothing missed. Without one it gets the whole history first.
Comment lines (``: ping``) are sent every ``events_heartbeat_s`` to keep proxies from closing
an idle stream. One poller per job reads the archive every ``events_poll_s`` for all its
streams.

Built on ``sse-starlette``'s :class:`EventSourceResponse` (framing, heartbeats, disconnect
detection, a send timeout for clients that stop reading) rather than hand-written framing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from ridgerider.api.auth import CurrentUser, ServiceDep, owned_job
from ridgerider.api.feeds import Cursor, Feeds
from ridgerider.api.routes.jobs import ERRORS, JobId

__all__ = ["router"]

router = APIRouter(tags=["jobs"])


async def _events(
    feeds: Feeds, job_id: int, cursor: Cursor, timeout_s: float
) -> AsyncIterator[ServerSentEvent]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    async for item, after in feeds.stream(job_id, cursor, deadline):
        durable = item.rank is not None or item.event is not None
        cursor = str(after) if durable else None
        yield ServerSentEvent(item.data, event=item.kind, id=cursor, sep="\n")


@router.get(
    "/jobs/{job_id}/events",
    operation_id="job_events",
    response_class=EventSourceResponse,
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "events"}},
)
def job_events(
    job_id: JobId,
    service: ServiceDep,
    user: CurrentUser,
    timeout_s: Annotated[
        float, Query(gt=0, le=86_400, description="close the stream after")
    ] = 3600,
    last_event_id: Annotated[
        str | None,
        Header(description="resume after this event (the last `id:` received)"),
    ] = None,
) -> EventSourceResponse:
    """A job's tree and status as server-sent events (see the module docstring)."""
    owned_job(service, user, job_id)
    settings = service.settings
    return EventSourceResponse(
        _events(service.feeds, job_id, Cursor.parse(last_event_id), timeout_s),
        headers={"Cache-Control": "no-cache"},
        ping=settings.events_heartbeat_s,
        send_timeout=settings.events_send_timeout_s,
        sep="\n",
    )
