"""SQL storage (PostgreSQL or a SQLite file) behind the :class:`~.base.Storage` interface.

Migrations are applied when the storage opens. Reads that may be large are paginated by a
cursor over an index: a job's tree by ``(job_id, rank)``, its rows by id, jobs by id, events by
id, so reading a job with 100k nodes costs one index range scan per page.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from typing_extensions import override

from ridgerider.schemas.enums import JobStatus, NodeStatus
from ridgerider.services.storage.base import budget_event, extended_budgets
from ridgerider.services.storage.migrate import upgrade
from ridgerider.services.storage.models import utcnow
from ridgerider.services.storage.records import (
    DuplicateJobError,
    EventRecord,
    JobRecord,
    JobSpec,
    Page,
)
from ridgerider.services.storage.session import Database
from ridgerider.services.storage.sqlaccounts import SQLAccounts
from ridgerider.services.storage.sqlrows import add_event, apply_transition, job_record
from ridgerider.services.storage.sqltree import SQLTree
from ridgerider.services.storage.tables import (
    EVENTS,
    JOBS,
    NODES,
    SOLUTIONS,
    drop_unused,
    store_blob,
)

if TYPE_CHECKING:  # torch: loaded where tensors are decoded, never by a listing
    from ridgerider.core.branch import Branch

__all__ = ["SQLStorage"]


def _has_tag(dialect: str, tag: str) -> ColumnElement[bool]:
    """Whether a job's JSON list of tags holds ``tag`` (JSONB containment, or SQLite json_each)."""
    tags = JOBS.c.tags
    if dialect == "postgresql":
        return tags.op("@>")(func.jsonb_build_array(tag))
    each = func.json_each(tags).table_valued("value")
    return exists(select(each.c.value).where(each.c.value == tag))


class SQLStorage(SQLAccounts, SQLTree):
    """A :class:`~.base.Storage` on SQLAlchemy; ``db`` may be a URL or a :class:`Database`.

    Users and tokens come from :class:`~.sqlaccounts.SQLAccounts`, the tree's reads from
    :class:`~.sqltree.SQLTree`; jobs and events are here.
    """

    def __init__(self, db: Database | str, *, migrate: bool = True) -> None:
        self.db = db if isinstance(db, Database) else Database(db)
        if migrate:
            upgrade(self.db)

    @override
    def close(self) -> None:
        self.db.close()

    # -- jobs ------------------------------------------------------------------------------

    @override
    def create_job(self, spec: JobSpec, root: Branch) -> JobRecord:
        try:
            return self._create_job(spec, root)
        except IntegrityError:
            if spec.idempotency_key is None:
                raise
            raise DuplicateJobError(spec.owner_id, spec.idempotency_key) from None

    def _create_job(self, spec: JobSpec, root: Branch) -> JobRecord:
        with self.db.session() as s:
            conn = s.connection()
            job = conn.execute(
                JOBS.insert()
                .values(
                    owner_id=spec.owner_id,
                    problem=spec.problem,
                    params=spec.params,
                    seed=spec.seed,
                    settings=spec.settings,
                    mis=spec.mis,
                    status=JobStatus.QUEUED,
                    wall_time_s=spec.wall_time_s,
                    lease_s=spec.lease_s,
                    max_attempts=spec.max_attempts,
                    accelerator=spec.accelerator,
                    active_s=spec.elapsed_s,
                    rng_state=None,
                    idempotency_key=spec.idempotency_key,
                    name=spec.name,
                    tags=list(spec.tags),
                    created_at=utcnow(),
                    updated_at=utcnow(),
                    pushed=0,
                    ranked=0,
                    prefix=0,
                    prefix_steps=0,
                    admitted=0,
                )
                .returning(*JOBS.c)
            ).one()
            data, ref = store_blob(conn, root.to_bytes())
            conn.execute(
                NODES.insert().values(
                    job_id=job.id,
                    parent_id=None,
                    key=root.key,
                    depth=0,
                    child_index=0,
                    branch_loss=root.loss,
                    branch_data=data,
                    branch_ref=ref,
                    status=NodeStatus.WAITING,
                    attempts=0,
                    created_at=utcnow(),
                )
            )
            add_event(conn, job.id, "created", {"problem": spec.problem})
            return job_record(job)

    @override
    def get_job(self, job_id: int) -> JobRecord | None:
        # A plain read (no ORM session): half the cost, and a worker reads it after every node.
        with self.db.read() as conn:
            row = conn.execute(select(JOBS).where(JOBS.c.id == job_id)).first()
        return None if row is None else job_record(row)

    @override
    def get_job_counted(self, job_id: int) -> tuple[JobRecord, int] | None:
        so = SOLUTIONS.c
        count = select(func.count()).where(so.job_id == job_id).scalar_subquery()
        stmt = select(JOBS, count.label("solution_count")).where(JOBS.c.id == job_id)
        with self.db.read() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else (job_record(row), int(row.solution_count))

    @override
    def set_mis(self, job_id: int, mis: dict[str, Any]) -> None:
        with self.db.session() as s:
            s.connection().execute(
                update(JOBS).where(JOBS.c.id == job_id).values(mis=mis, updated_at=utcnow())
            )

    @override
    def find_job(self, owner_id: int | None, idempotency_key: str) -> JobRecord | None:
        j = JOBS.c
        owner = j.owner_id.is_(None) if owner_id is None else j.owner_id == owner_id
        stmt = select(JOBS).where(owner, j.idempotency_key == idempotency_key)
        with self.db.session(write=False) as s:
            row = s.connection().execute(stmt).first()
        return None if row is None else job_record(row)

    @override
    def list_jobs(
        self,
        *,
        owner_id: int | None = None,
        status: str | None = None,
        cursor: int | None = None,
        limit: int = 100,
        name: str | None = None,
        tag: str | None = None,
        problem: str | None = None,
    ) -> Page[JobRecord]:
        j = JOBS.c
        stmt = select(JOBS).order_by(j.id.desc()).limit(limit + 1)
        exact = {j.owner_id: owner_id, j.status: status, j.problem: problem}
        for column, value in exact.items():
            if value is not None:
                stmt = stmt.where(column == value)
        if cursor is not None:
            stmt = stmt.where(j.id < cursor)
        if name is not None:
            stmt = stmt.where(func.lower(j.name).contains(name.lower(), autoescape=True))
        with self.db.session(write=False) as s:
            conn = s.connection()
            if tag is not None:
                stmt = stmt.where(_has_tag(conn.dialect.name, tag))
            rows = [job_record(r) for r in conn.execute(stmt)]
        return Page(rows[:limit], rows[limit - 1].id if len(rows) > limit else None)

    @override
    def count_solutions(self, job_ids: Iterable[int]) -> dict[int, int]:
        ids = list(job_ids)
        counts = dict.fromkeys(ids, 0)
        if not ids:
            return counts
        so = SOLUTIONS.c
        stmt = select(so.job_id, func.count()).where(so.job_id.in_(ids)).group_by(so.job_id)
        with self.db.session(write=False) as s:
            counts.update({job_id: n for job_id, n in s.connection().execute(stmt)})
        return counts

    @override
    def delete_job(self, job_id: int) -> bool:
        n = NODES.c
        with self.db.session() as s:
            conn = s.connection()
            if conn.execute(select(JOBS.c.id).where(JOBS.c.id == job_id)).first() is None:
                return False
            refs = conn.execute(
                select(n.branch_ref, n.theta_ref).where(
                    n.job_id == job_id, or_(n.branch_ref.is_not(None), n.theta_ref.is_not(None))
                )
            ).all()
            shas = {ref for row in refs for ref in row if ref is not None}
            for table in (SOLUTIONS, EVENTS, NODES):
                conn.execute(delete(table).where(table.c.job_id == job_id))
            conn.execute(delete(JOBS).where(JOBS.c.id == job_id))
            drop_unused(conn, shas)
            return True

    @override
    def transition(
        self, job_id: int, to: str, *, error: str | None = None, stopped_by: str | None = None
    ) -> bool:
        with self.db.session() as s:
            return apply_transition(s.connection(), job_id, to, error=error, stopped_by=stopped_by)

    @override
    def extend_job(
        self,
        job_id: int,
        *,
        max_nodes: int | None = None,
        max_steps: int | None = None,
        wall_time_s: float | None = None,
    ) -> bool:
        j = JOBS.c
        with self.db.session() as s:
            conn = s.connection()
            job = conn.execute(select(JOBS).where(j.id == job_id).with_for_update()).first()
            if job is None:
                return False
            settings, wall = extended_budgets(
                job.settings, job.wall_time_s, max_nodes, max_steps, wall_time_s
            )
            values: dict[str, Any] = {"settings": settings, "wall_time_s": wall}
            resumable = job.stopped_by not in (None, "exhausted")
            if resumable and job.status in (JobStatus.RUNNING, JobStatus.SUCCEEDED):
                values["stopped_by"] = None
            conn.execute(update(JOBS).where(j.id == job_id).values(values))
            add_event(conn, job_id, "extended", budget_event(max_nodes, max_steps, wall_time_s))
            if job.status == JobStatus.SUCCEEDED and resumable:
                return apply_transition(conn, job_id, JobStatus.RUNNING)
            return job.status == JobStatus.RUNNING

    @override
    def requeue_dead(self, job_id: int) -> int:
        n = NODES.c
        with self.db.session() as s:
            stmt = (
                update(NODES)
                .where(n.job_id == job_id, n.status == NodeStatus.DEAD)
                .values(status=NodeStatus.WAITING, attempts=0)
            )
            return s.connection().execute(stmt).rowcount

    # -- events ----------------------------------------------------------------------------

    @override
    def add_event(self, job_id: int, kind: str, data: dict[str, Any] | None = None) -> None:
        with self.db.session() as s:
            add_event(s.connection(), job_id, kind, data or {})

    @override
    def list_events(
        self, job_id: int, *, cursor: int | None = None, limit: int = 100
    ) -> Page[EventRecord]:
        e = EVENTS.c
        stmt = select(EVENTS).where(e.job_id == job_id).order_by(e.id).limit(limit + 1)
        if cursor is not None:
            stmt = stmt.where(e.id > cursor)
        with self.db.session(write=False) as s:
            rows = [EventRecord(**r._asdict()) for r in s.connection().execute(stmt)]
        return Page(rows[:limit], rows[limit - 1].id if len(rows) > limit else None)
