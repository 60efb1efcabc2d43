"""SQL storage (PostgreSQL or a SQLite file) behind the :class:`~.base.Storage` interface.

Migrations are applied when the storage opens. Reads that may be large are paginated by a
cursor over an index: a job's tree by ``(job_id, rank)``, its rows by id, jobs by id, events by
id, so reading a job with 100k nodes costs one index range scan per page.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, func, select, update
from sqlalchemy.exc import IntegrityError
from torch import Tensor
from typing_extensions import override

from ridgerider.core.branch import Branch, tensor_from_bytes
from ridgerider.schemas.enums import JobStatus, NodeStatus
from ridgerider.services.storage.base import (
    FINAL,
    TRANSITIONS,
    Storage,
    budget_event,
    extended_budgets,
    hash_token,
)
from ridgerider.services.storage.migrate import upgrade
from ridgerider.services.storage.models import utcnow
from ridgerider.services.storage.records import (
    DuplicateJobError,
    EventRecord,
    JobRecord,
    JobSpec,
    NodeRecord,
    Page,
    RideRecord,
    SolutionRecord,
    TokenRecord,
    UserRecord,
)
from ridgerider.services.storage.session import Database, db_now
from ridgerider.services.storage.tables import (
    EVENTS,
    JOBS,
    NODES,
    SOLUTIONS,
    TOKENS,
    USERS,
    load_blob,
    store_blob,
)

__all__ = ["SQLStorage", "add_event", "apply_transition", "job_record"]

_NODE_COLS = [NODES.c[f.name] for f in fields(NodeRecord)]
"""The columns a :class:`NodeRecord` is read from (its fields, by name)."""


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
    """Compare-and-set a job's status (with its time bookkeeping) inside a transaction."""
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
    return True


def _node_record(row: Row[Any]) -> NodeRecord:
    return NodeRecord(**row._asdict())


class SQLStorage(Storage):
    """A :class:`Storage` on SQLAlchemy; ``db`` may be a URL or a :class:`Database`."""

    def __init__(self, db: Database | str, *, migrate: bool = True) -> None:
        self.db = db if isinstance(db, Database) else Database(db)
        if migrate:
            upgrade(self.db)

    @override
    def close(self) -> None:
        self.db.close()

    # -- users and tokens ------------------------------------------------------------------

    @override
    def create_user(self, name: str, *, is_admin: bool = False) -> UserRecord:
        try:
            with self.db.session() as s:
                row = s.connection().execute(
                    USERS.insert()
                    .values(name=name, is_admin=is_admin, created_at=utcnow())
                    .returning(*USERS.c)
                )
                return UserRecord(**row.one()._asdict())
        except IntegrityError:
            raise ValueError(f"user {name!r} exists") from None

    @override
    def get_user(self, user_id: int) -> UserRecord | None:
        with self.db.session(write=False) as s:
            row = s.connection().execute(select(USERS).where(USERS.c.id == user_id)).first()
        return None if row is None else UserRecord(**row._asdict())

    @override
    def get_user_by_name(self, name: str) -> UserRecord | None:
        with self.db.session(write=False) as s:
            row = s.connection().execute(select(USERS).where(USERS.c.name == name)).first()
        return None if row is None else UserRecord(**row._asdict())

    @override
    def find_token(self, secret: str) -> TokenRecord | None:
        t = TOKENS.c
        cols = (t.id, t.user_id, t.name, t.prefix, t.created_at, t.expires_at, t.revoked_at)
        stmt = select(*cols).where(t.token_hash == hash_token(secret))
        with self.db.session(write=False) as s:
            row = s.connection().execute(stmt).first()
        return None if row is None else TokenRecord(**row._asdict())

    @override
    def _insert_token(
        self, user_id: int, name: str, token_hash: str, prefix: str, expires_at: datetime | None
    ) -> TokenRecord:
        t = TOKENS.c
        cols = (t.id, t.user_id, t.name, t.prefix, t.created_at, t.expires_at, t.revoked_at)
        try:
            with self.db.session() as s:
                row = s.connection().execute(
                    TOKENS.insert()
                    .values(
                        user_id=user_id,
                        name=name,
                        token_hash=token_hash,
                        prefix=prefix,
                        expires_at=expires_at,
                        created_at=utcnow(),
                    )
                    .returning(*cols)
                )
                return TokenRecord(**row.one()._asdict())
        except IntegrityError:
            raise ValueError(f"no user {user_id}") from None

    @override
    def verify_token(self, secret: str) -> UserRecord | None:
        t, now = TOKENS.c, utcnow()
        live = and_(
            t.token_hash == hash_token(secret),
            t.revoked_at.is_(None),
            (t.expires_at.is_(None)) | (t.expires_at > now),
        )
        with self.db.session(write=False) as s:
            row = (
                s.connection()
                .execute(select(USERS).join(TOKENS, t.user_id == USERS.c.id).where(live))
                .first()
            )
        return None if row is None else UserRecord(**row._asdict())

    @override
    def revoke_token(self, token_id: int) -> bool:
        t = TOKENS.c
        with self.db.session() as s:
            stmt = (
                update(TOKENS)
                .where(t.id == token_id, t.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            return s.connection().execute(stmt).rowcount == 1

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
                    active_s=spec.elapsed_s,
                    rng_state=None,
                    idempotency_key=spec.idempotency_key,
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
        with self.db.session(write=False) as s:
            row = s.connection().execute(select(JOBS).where(JOBS.c.id == job_id)).first()
        return None if row is None else job_record(row)

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
    ) -> Page[JobRecord]:
        j = JOBS.c
        stmt = select(JOBS).order_by(j.id.desc()).limit(limit + 1)
        if owner_id is not None:
            stmt = stmt.where(j.owner_id == owner_id)
        if status is not None:
            stmt = stmt.where(j.status == status)
        if cursor is not None:
            stmt = stmt.where(j.id < cursor)
        with self.db.session(write=False) as s:
            rows = [job_record(r) for r in s.connection().execute(stmt)]
        return Page(rows[:limit], rows[limit - 1].id if len(rows) > limit else None)

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

    # -- the tree --------------------------------------------------------------------------

    @override
    def list_nodes(
        self, job_id: int, *, cursor: int | None = None, limit: int = 1000, tree: bool = True
    ) -> Page[NodeRecord]:
        n = NODES.c
        stmt = select(*_NODE_COLS).where(n.job_id == job_id).limit(limit + 1)
        if tree:
            prefix = select(JOBS.c.prefix).where(JOBS.c.id == job_id).scalar_subquery()
            stmt = stmt.where(n.rank >= (cursor or 0), n.rank < prefix).order_by(n.rank)
        else:
            stmt = stmt.where(n.id > (cursor or 0)).order_by(n.id)
        with self.db.session(write=False) as s:
            rows = [_node_record(r) for r in s.connection().execute(stmt)]
        if len(rows) <= limit:
            return Page(rows, None)
        last = rows[limit - 1]
        return Page(rows[:limit], (last.rank or 0) + 1 if tree else last.id)

    @override
    def get_node(self, node_id: int) -> NodeRecord | None:
        with self.db.session(write=False) as s:
            row = s.connection().execute(select(*_NODE_COLS).where(NODES.c.id == node_id)).first()
        return None if row is None else _node_record(row)

    @override
    def node_theta(self, node_id: int) -> Tensor | None:
        n = NODES.c
        with self.db.session(write=False) as s:
            conn = s.connection()
            row = conn.execute(
                select(n.theta_data, n.theta_ref, n.trace).where(n.id == node_id)
            ).first()
            if row is None or row.trace is None:
                return None
            data = load_blob(conn, row.theta_data, row.theta_ref)
        return None if data is None else tensor_from_bytes(data, row.trace["dtype"])

    @override
    def node_branch(self, node_id: int) -> Branch | None:
        n = NODES.c
        with self.db.session(write=False) as s:
            conn = s.connection()
            row = conn.execute(select(n.branch_data, n.branch_ref).where(n.id == node_id)).first()
            data = None if row is None else load_blob(conn, row.branch_data, row.branch_ref)
        return None if data is None else Branch.from_bytes(data)

    @override
    def solutions(self, job_id: int) -> list[SolutionRecord]:
        s_, n = SOLUTIONS.c, NODES.c
        prefix = select(JOBS.c.prefix).where(JOBS.c.id == job_id).scalar_subquery()
        stmt = (
            select(s_.node_id, s_.key, n.rank, s_.solution_key, s_.loss, s_.metrics)
            .join(NODES, n.id == s_.node_id)
            .where(s_.job_id == job_id, n.rank < prefix)
            .order_by(n.rank)
        )
        with self.db.session(write=False) as s:
            return [SolutionRecord(**r._asdict()) for r in s.connection().execute(stmt)]

    @override
    def rides(self, job_id: int) -> list[RideRecord]:
        n = NODES.c
        cols = (n.id, n.key, n.depth, n.lease_owner, n.attempts, n.ride_steps, n.ride_loss)
        stmt = (
            select(*cols, n.branch_loss)
            .where(n.job_id == job_id, n.status == NodeStatus.LEASED)
            .order_by(n.id)
        )
        with self.db.session(write=False) as s:
            return [RideRecord.of_row(r) for r in s.connection().execute(stmt)]

    @override
    def count_nodes(self, job_id: int) -> dict[str, int]:
        n = NODES.c
        stmt = select(n.status, func.count()).where(n.job_id == job_id).group_by(n.status)
        with self.db.session(write=False) as s:
            return {status: int(c) for status, c in s.connection().execute(stmt)}
