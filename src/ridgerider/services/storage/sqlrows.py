"""SQL helpers on job rows, run inside the caller's transaction.

The SQL storage and the database frontier share them: a job row as a record, an event appended
to a job's log, and a compare-and-set of a job's status with its time bookkeeping.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, func, update

from ridgerider.schemas.enums import JobStatus
from ridgerider.services.storage.base import FINAL, TRANSITIONS
from ridgerider.services.storage.compact import compact_job
from ridgerider.services.storage.models import utcnow
from ridgerider.services.storage.records import JobRecord
from ridgerider.services.storage.session import db_now
from ridgerider.services.storage.tables import EVENTS, JOBS

__all__ = ["add_event", "apply_transition", "job_record"]


def job_record(row: Row[Any]) -> JobRecord:
    """A job row as a record."""
    m = row._mapping
    return JobRecord(
        id=m["id"],
        owner_id=m["owner_id"],
        problem=m["problem"],
        params=m["params"],
        seed=m["seed"],
        settings=m["settings"],
        mis=m["mis"],
        status=m["status"],
        stopped_by=m["stopped_by"],
        error=m["error"],
        wall_time_s=m["wall_time_s"],
        lease_s=m["lease_s"],
        max_attempts=m["max_attempts"],
        nodes=m["prefix"],
        steps=m["prefix_steps"],
        admitted=m["admitted"],
        active_s=m["active_s"],
        segment_start=m["segment_start"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        accelerator=m["accelerator"],
        name=m["name"],
        tags=tuple(m["tags"] or ()),
    )


def add_event(conn: Connection, job_id: int, kind: str, data: dict[str, Any]) -> None:
    """Append a job event inside the caller's transaction."""
    conn.execute(EVENTS.insert().values(job_id=job_id, kind=kind, data=data, at=utcnow()))


def apply_transition(
    conn: Connection,
    job_id: int,
    to: str,
    *,
    error: str | None = None,
    stopped_by: str | None = None,
) -> bool:
    """Compare-and-set a job's status (with its time bookkeeping) inside a transaction.

    A job that succeeds has its branches compacted (:mod:`.compact`).
    """
    j = JOBS.c
    now = db_now()
    segment = func.coalesce(now - j.segment_start, 0.0)
    # Only a running job has a segment (segment_start is NULL otherwise): close it.
    values: dict[str, Any] = {"status": to, "active_s": j.active_s + segment}
    values["updated_at"] = utcnow()
    if to == JobStatus.RUNNING:
        values |= {
            "segment_start": now,
            "started_at": func.coalesce(j.started_at, utcnow()),
            "finished_at": None,
            "error": None,
        }
    else:
        values["segment_start"] = None
    if to in FINAL:
        values["finished_at"] = utcnow()
    if to == JobStatus.FAILED:
        values["error"] = error
    if stopped_by is not None:
        values["stopped_by"] = stopped_by
    stmt = update(JOBS).where(j.id == job_id, j.status.in_(TRANSITIONS[to])).values(values)
    if conn.execute(stmt).rowcount != 1:
        return False
    add_event(conn, job_id, to, {"error": error} if error else {})
    if to == JobStatus.SUCCEEDED:
        compact_job(conn, job_id)
    return True
