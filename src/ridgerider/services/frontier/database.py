"""The database frontier: leases and the sequencer in SQL rows.

PostgreSQL claims with ``UPDATE … WHERE id IN (SELECT … ORDER BY job_id, rank LIMIT k FOR
UPDATE SKIP LOCKED)``, so concurrent claimers never wait on each other's rows; SQLite does the
same statement under its single writer. Heartbeats extend leases (and report rides'
progress); a failed or expired lease sends its branch back to waiting, or dead-letters it.

The class is built in three layers: :class:`~.dbsequencer.DatabaseSequencer` (the storage, the
compiled statements and the sequencer), :class:`~.dbcomplete.DatabaseCompletion` (completions
and pushes) and :class:`DatabaseFrontier` here (claims, heartbeats, failures and expiry).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, exists, select, update
from typing_extensions import override

from ridgerider.core.branch import Branch
from ridgerider.schemas.enums import JobStatus, NodeStatus
from ridgerider.services.frontier.base import Lease, owner_is_dead_here
from ridgerider.services.frontier.dbcomplete import DatabaseCompletion
from ridgerider.services.frontier.pgpath import ASYNC, run
from ridgerider.services.frontier.statements import Compiled, Result
from ridgerider.services.storage.records import RideProgress
from ridgerider.services.storage.session import db_now
from ridgerider.services.storage.sqlrows import add_event, apply_transition
from ridgerider.services.storage.tables import JOBS, NODES, load_blob

__all__ = ["DatabaseFrontier"]

_PROGRESS = (
    update(NODES)
    .where(NODES.c.id == bindparam("nid"), NODES.c.lease_token == bindparam("tok"))
    .values(ride_steps=bindparam("st"), ride_loss=bindparam("lo"))
)
"""A held ride's progress (executemany over the leases of one heartbeat)."""

n, j = NODES.c, JOBS.c
_REAP_BATCH = 1000


class DatabaseFrontier(DatabaseCompletion):
    """A :class:`~.base.Frontier` on a :class:`~..storage.sql.SQLStorage` (PostgreSQL or SQLite)."""

    def _ttl(self, lease_s: float | None) -> Any:
        """Lease length: explicit, the frontier's, or the job's ``lease_s`` column."""
        ttl = lease_s or self.lease_s
        if ttl is not None:
            return ttl
        return select(j.lease_s).where(j.id == n.job_id).scalar_subquery()

    # -- claims ----------------------------------------------------------------------------

    def _leases(self, conn: Connection | None, rows: Any, worker: str, token: str) -> list[Lease]:
        """Leases of the rows a claim statement returned, in claim order.

        A child branch stored without θ takes its parent's end θ (returned with the row).
        """
        out = []
        # Admitted rows by rank, then speculative ones (no rank yet) in claim order.
        for r in sorted(rows, key=lambda r: (r.job_id, r.rank is None, r.rank or 0)):
            data = self._blob(conn, r.branch_data, r.branch_ref)
            theta = self._blob(conn, r.parent_theta, r.parent_ref)
            branch = Branch.from_bytes(bytes(data or b""), None if theta is None else bytes(theta))
            lease = Lease(
                r.job_id,
                r.id,
                token,
                worker,
                r.attempts,
                r.lease_expires,
                r.rank,
                branch,
                r.branch_ref,
            )
            out.append(lease)
        return out

    def _blob(self, conn: Connection | None, data: Any, ref: str | None) -> Any:
        """An inline blob, or an artifact's (read in a session of its own without ``conn``)."""
        if data is not None or ref is None:
            return data
        if conn is None:
            with self.db.session(write=False) as s:
                return load_blob(s.connection(), None, ref)
        return load_blob(conn, None, ref)

    def _lease_rows(self, *claims: tuple[Compiled, dict[str, Any]]) -> list[Lease]:
        """Run claim statements in one transaction of their own (one round trip on PostgreSQL).

        Each claim is a statement and its parameters; the leases come back in claim order.
        """
        if self.sql.pg:
            with self.db.pipeline() as pipe:
                run(pipe, "BEGIN")
                run(pipe, ASYNC)
                curs = [run(pipe, stmt, params) for stmt, params in claims]
                run(pipe, "COMMIT")
            done = zip(curs, claims, strict=True)
            return [
                lease
                for cur, (_, p) in done
                for lease in self._leases(None, Result(cur), p["worker"], p["token"])
            ]
        with self.db.session(durable=False) as s:
            conn = s.connection()
            return [
                lease
                for stmt, p in claims
                for lease in self._leases(conn, stmt(conn, **p), p["worker"], p["token"])
            ]

    @override
    def claim(
        self,
        worker: str,
        k: int = 1,
        *,
        job_id: int | None = None,
        lease_s: float | None = None,
        accelerator: str = "cpu",
    ) -> list[Lease]:
        token = uuid.uuid4().hex
        stmt = self.sql.claim_any if job_id is None else self.sql.claim_job
        params = {"worker": worker, "token": token, "ttl": lease_s or self.lease_s, "k": k}
        params |= {"job": job_id, "acc": accelerator}
        # A bfs job ranks every branch when it is pushed: nothing of it is ever ridden ahead.
        ahead = self.speculation > 0 and (job_id is None or self._orders({job_id})[job_id] != "bfs")
        if ahead and self.sql.pg and job_id is not None:
            # Admitted rows first, then rides ahead for the rest of k, in one round trip:
            # under a speculative order nearly every claim needs both.
            more = {"cap": self.speculation, "token": uuid.uuid4().hex, "first": token}
            leases = self._lease_rows((stmt, params), (self.sql.ahead_job_rest, params | more))
        else:
            leases = self._lease_rows((stmt, params))
            if len(leases) < k and ahead:
                # Nothing more admitted: ride ahead what the order most likely wants next.
                then = self.sql.ahead_any if job_id is None else self.sql.ahead_job
                more = {"k": k - len(leases), "cap": self.speculation, "token": uuid.uuid4().hex}
                leases += self._lease_rows((then, params | more))
        if len(leases) < k and ahead:
            self.plan_idle(job_id)  # short of work: jobs that plan their ranks may have no plan
        return leases

    @override
    def heartbeat(
        self,
        leases: Sequence[Lease],
        lease_s: float | None = None,
        progress: Mapping[int, RideProgress] | None = None,
    ) -> list[bool]:
        held: set[int] = set()
        by_token: dict[str, list[int]] = {}
        for lease in leases:
            by_token.setdefault(lease.token, []).append(lease.node_id)
        progress = progress or {}
        with self.db.session(durable=False) as s:
            conn = s.connection()
            for token, ids in by_token.items():
                live = and_(
                    n.lease_token == token,
                    n.status == NodeStatus.LEASED,
                    n.lease_expires > db_now(),
                )
                stmt = (
                    update(NODES)
                    .where(n.id.in_(ids), live)
                    .values(lease_expires=db_now() + self._ttl(lease_s))
                    .returning(n.id)
                )
                held.update(conn.execute(stmt).scalars())
        rows = [
            {"nid": lease.node_id, "tok": lease.token, "st": p.steps, "lo": p.loss}
            for lease in leases
            if lease.node_id in held and (p := progress.get(lease.node_id)) is not None
        ]
        if rows:
            # One executemany for every held ride, in a transaction of its own: a second
            # update of a row this transaction wrote would make PostgreSQL check its foreign
            # key (a KEY SHARE lock on the parent row), which can deadlock with other writers.
            with self.db.session(durable=False) as s:
                s.connection().execute(_PROGRESS, rows)
        return [lease.node_id in held for lease in leases]

    # -- failures and expiry ---------------------------------------------------------------

    def _fenced(self, lease: Lease) -> Any:
        """The lease is still ours and live, and the job still runs."""
        running = exists().where(j.id == n.job_id, j.status == JobStatus.RUNNING)
        return and_(
            n.id == lease.node_id,
            n.status == NodeStatus.LEASED,
            n.lease_token == lease.token,
            n.lease_expires > db_now(),
            running,
        )

    def _release(self, conn: Connection, where: Any, error: str) -> list[Any]:
        """Waiting again, or dead after ``max_attempts``; a dead branch fails its job."""
        cap = select(j.max_attempts).where(j.id == n.job_id).scalar_subquery()
        stmt = (
            update(NODES)
            .where(where)
            .values(
                status=case((n.attempts >= cap, NodeStatus.DEAD), else_=NodeStatus.WAITING),
                lease_owner=None,
                lease_token=None,
                lease_expires=None,
                last_error=error,
            )
            .returning(n.id, n.job_id, n.rank, n.status, n.key, n.attempts)
        )
        rows = list(conn.execute(stmt))
        for r in rows:
            if r.status == NodeStatus.DEAD:
                add_event(conn, r.job_id, "dead_letter", {"node": r.id, "key": r.key})
                msg = f"branch {r.key or '(root)'} failed {r.attempts} times: {error}"
                apply_transition(conn, r.job_id, JobStatus.FAILED, error=msg)
        return rows

    @override
    def fail(self, lease: Lease, error: str) -> bool:
        with self.db.session(durable=False) as s:
            rows = self._release(s.connection(), self._fenced(lease), error)
        self._requeued(rows)
        return bool(rows)

    @override
    def reap(self) -> int:
        expired = (
            select(n.id)
            .where(n.status == NodeStatus.LEASED, n.lease_expires <= db_now())
            .limit(_REAP_BATCH)
            .with_for_update(skip_locked=True)
        )
        with self.db.session(durable=False) as s:
            conn = s.connection()
            rows = self._release(conn, n.id.in_(expired.scalar_subquery()), "lease expired")
            per_job: dict[int, int] = {}
            for r in rows:
                per_job[r.job_id] = per_job.get(r.job_id, 0) + 1
            for job_id, count in per_job.items():
                add_event(conn, job_id, "leases_expired", {"count": count})
        self._requeued(rows)
        return len(rows)

    def _requeued(self, rows: list[Any]) -> None:
        """Hook: branches back to waiting (the Redis frontier re-indexes them)."""

    @override
    def release_orphans(self, job_id: int) -> int:
        with self.db.session() as s:
            conn = s.connection()
            leased = conn.execute(
                select(n.id, n.lease_owner).where(n.job_id == job_id, n.status == NodeStatus.LEASED)
            )
            orphans = [r.id for r in leased if owner_is_dead_here(r.lease_owner)]
            if orphans:
                conn.execute(
                    update(NODES).where(n.id.in_(orphans)).values(lease_expires=db_now() - 1.0)
                )
        if orphans:
            self.reap()
        return len(orphans)
