"""The database frontier: leases and the sequencer in SQL rows.

PostgreSQL claims with ``UPDATE … WHERE id IN (SELECT … ORDER BY job_id, rank LIMIT k FOR
UPDATE SKIP LOCKED)``, so concurrent claimers never wait on each other's rows; SQLite does the
same statement under its single writer. A completion touches only its own rows (the node, its
children, its solution) and never the job row. The sequencer runs afterwards in a short
transaction of its own, started by the worker whose rank the finished prefix waits for; a worker
that finds it taken leaves the work to its holder, which checks after committing whether the
prefix rank got done meanwhile, and the reaper's tick re-runs any job left with a done prefix
rank, so no completion is ever left unsequenced and nobody waits for the job row.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, exists, func, select, update
from typing_extensions import override

import ridgerider.services.frontier.sequencer as sequencer
from ridgerider.core.branch import Branch, Node
from ridgerider.core.expand import Expansion
from ridgerider.schemas.enums import JobStatus, NodeStatus
from ridgerider.services.frontier.base import Frontier, Lease, owner_is_dead_here
from ridgerider.services.frontier.codec import child_rows, node_values
from ridgerider.services.frontier.pgpath import (
    ASYNC,
    COMPLETE,
    PREFIXES,
    complete_params,
    refresh_statistics,
    run,
)
from ridgerider.services.frontier.pgseq import Fallback, bfs_round
from ridgerider.services.frontier.sqlseq import SqlSeqStore, load_state, save_state
from ridgerider.services.frontier.statements import (
    CHILD_COLS,
    JSON_COLS,
    RESULT_COLS,
    Compiled,
    Result,
    statements,
)
from ridgerider.services.storage.records import RideProgress
from ridgerider.services.storage.session import db_now
from ridgerider.services.storage.sql import SQLStorage
from ridgerider.services.storage.sqlrows import add_event, apply_transition
from ridgerider.services.storage.tables import (
    JOBS,
    NODES,
    load_blob,
    store_blob,
)

__all__ = ["DatabaseFrontier"]

_PROGRESS = (
    update(NODES)
    .where(NODES.c.id == bindparam("nid"), NODES.c.lease_token == bindparam("tok"))
    .values(ride_steps=bindparam("st"), ride_loss=bindparam("lo"))
)
"""A held ride's progress (executemany over the leases of one heartbeat)."""

n, j = NODES.c, JOBS.c
_REAP_BATCH = 1000
_STATS_EVERY_S = 5.0
"""How often one process checks whether the frontier's tables need new planner statistics."""


def _first_of_each(done: Sequence[tuple[Lease, Expansion]]) -> list[tuple[Lease, Expansion]]:
    """A batch without repeated leases (a lease listed twice is recorded once, the first time)."""
    seen: set[tuple[int, str]] = set()
    out = []
    for lease, expansion in done:
        if (lease.node_id, lease.token) not in seen:
            seen.add((lease.node_id, lease.token))
            out.append((lease, expansion))
    return out


class DatabaseFrontier(Frontier):
    """A :class:`Frontier` on a :class:`SQLStorage` (PostgreSQL or SQLite)."""

    def __init__(self, storage: SQLStorage, *, lease_s: float | None = None) -> None:
        super().__init__()
        self.storage: SQLStorage = storage
        self.db = storage.db
        self.sql = statements(self.db.dialect, self.db.engine.dialect)
        self.lease_s = lease_s
        self._general: set[int] = set()  # jobs whose sequencer rounds take the general path
        self._stats_due = 0.0  # when this process next checks the planner statistics

    def _ttl(self, lease_s: float | None) -> Any:
        """Lease length: explicit, the frontier's, or the job's ``lease_s`` column."""
        ttl = lease_s or self.lease_s
        if ttl is not None:
            return ttl
        return select(j.lease_s).where(j.id == n.job_id).scalar_subquery()

    # -- claims ----------------------------------------------------------------------------

    def _leases(self, conn: Connection | None, rows: Any, worker: str, token: str) -> list[Lease]:
        """Leases of the rows a claim statement returned, in claim order."""
        out = []
        for r in sorted(rows, key=lambda r: (r.job_id, r.rank)):
            data = r.branch_data
            if data is None and r.branch_ref is not None:  # an artifact (large branch)
                if conn is None:
                    with self.db.session(write=False) as s:
                        data = load_blob(s.connection(), None, r.branch_ref)
                else:
                    data = load_blob(conn, None, r.branch_ref)
            branch = Branch.from_bytes(bytes(data or b""))
            lease = Lease(
                r.job_id, r.id, token, worker, r.attempts, r.lease_expires, r.rank, branch
            )
            out.append(lease)
        return out

    def _lease_rows(self, stmt: Compiled, params: dict[str, Any]) -> list[Lease]:
        """Run a claim statement in a transaction of its own (one round trip on PostgreSQL)."""
        worker, token = params["worker"], params["token"]
        if self.sql.pg:
            with self.db.pipeline() as pipe:
                run(pipe, "BEGIN")
                run(pipe, ASYNC)
                cur = run(pipe, stmt, params)
                run(pipe, "COMMIT")
            return self._leases(None, Result(cur), worker, token)
        with self.db.session(durable=False) as s:
            conn = s.connection()
            return self._leases(conn, stmt(conn, **params), worker, token)

    @override
    def claim(
        self, worker: str, k: int = 1, *, job_id: int | None = None, lease_s: float | None = None
    ) -> list[Lease]:
        token = uuid.uuid4().hex
        stmt = self.sql.claim_any if job_id is None else self.sql.claim_job
        params = {"worker": worker, "token": token, "ttl": lease_s or self.lease_s, "k": k}
        return self._lease_rows(stmt, {**params, "job": job_id})

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
            if rows:  # one executemany for every held ride
                conn.execute(_PROGRESS, rows)
        return [lease.node_id in held for lease in leases]

    # -- completion ------------------------------------------------------------------------

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

    @override
    def complete(self, lease: Lease, expansion: Expansion) -> bool:
        return self.complete_many([(lease, expansion)])[0]

    @override
    def complete_many(self, done: Sequence[tuple[Lease, Expansion]]) -> list[bool]:
        if not done:
            return []
        if self.sql.pg and (params := complete_params(_first_of_each(done))) is not None:
            return self._complete_pg(done, params)
        ok: list[bool] = []
        ranks: dict[int, set[int]] = {}  # job → ranks recorded here
        with self.db.session() as s:
            conn = s.connection()
            kids: list[dict[str, Any]] = []
            for lease, expansion in done:
                row = self._record(conn, lease, expansion.node)
                ok.append(row is not None)
                if row is not None:
                    kids += child_rows(lease.job_id, lease.node_id, expansion.children)
                    if row.rank is not None:
                        ranks.setdefault(lease.job_id, set()).add(row.rank)
            self._insert_rows(conn, kids)
        # The job row is not locked above: a completion never waits for the sequencer. If the
        # prefix now waits for one of our ranks, sequence; if another worker holds the
        # sequencer, it sees our commit in its check after committing (see _after).
        for job_id, mine in ranks.items():
            if self._prefix(job_id) in mine:
                self._sequence(job_id, skip_locked=True)
        return ok

    def _complete_pg(
        self, done: Sequence[tuple[Lease, Expansion]], params: dict[str, str]
    ) -> list[bool]:
        """``complete_many`` on PostgreSQL: one statement, committed, then the prefixes read.

        Two round trips; the prefixes are read after the commit, as the per-statement path
        does, so a rank the prefix waits for is sequenced by its worker or by the sequencer's
        check after its own commit (see :meth:`_after`).
        """
        jobs = sorted({lease.job_id for lease, _ in done})
        with self.db.pipeline() as pipe:
            cur = run(pipe, COMPLETE, params)  # one statement: its own (durable) transaction
            pipe.sync()
            pre = run(pipe, PREFIXES, {"jobs": jobs})
        recorded = {(r[0], r[1]): (r[2], r[3]) for r in cur.fetchall()}
        prefix = dict(pre.fetchall())
        ranks: dict[int, set[int]] = {}
        for job_id, rank in recorded.values():
            if rank is not None:
                ranks.setdefault(job_id, set()).add(rank)
        ok: list[bool] = []  # a lease listed twice is recorded once
        for lease, _ in done:
            ok.append(recorded.pop((lease.node_id, lease.token), None) is not None)
        for job_id, mine in ranks.items():
            if prefix.get(job_id) in mine:
                self._sequence(job_id, skip_locked=True)
        return ok

    def _record(self, conn: Connection, lease: Lease, node: Node) -> Any:
        """Write a ridden node if its lease is still ours; ``(rank, prefix)`` or ``None``."""
        values = node_values(node)
        values["theta_data"], values["theta_ref"] = store_blob(conn, values["theta_data"])
        for col in JSON_COLS:
            values[col] = json.dumps(values[col])
        params = {f"v_{c}": values[c] for c in RESULT_COLS}
        row = self.sql.complete(conn, node=lease.node_id, token=lease.token, **params).first()
        if row is not None and node.is_solution:
            self.sql.solution(
                conn,
                job_id_0=lease.job_id,
                node_id_0=lease.node_id,
                key_0=lease.branch.key,
                solution_key_0=node.solution_key,
                loss_0=node.loss,
                metrics_0=json.dumps(node.metrics),
            )
        return row

    def _insert(self, conn: Connection, job_id: int, parent_id: int, kids: Sequence[Branch]) -> int:
        """Insert child branches, skipping fingerprints the job already has."""
        return self._insert_rows(conn, child_rows(job_id, parent_id, list(kids)))

    def _insert_rows(self, conn: Connection, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        params: dict[str, Any] = {}
        for i, r in enumerate(rows):
            r["branch_data"], r["branch_ref"] = store_blob(conn, r["branch_data"])
            params |= {f"{c}_{i}": r[c] for c in CHILD_COLS}
        return self.sql.children(len(rows))(conn, **params).rowcount

    @override
    def push(self, job_id: int, parent_id: int, branches: Sequence[Branch]) -> int:
        with self.db.session() as s:
            return self._insert(s.connection(), job_id, parent_id, branches)

    def _prefix(self, job_id: int) -> int:
        with self.db.session(write=False) as s:
            return int(self.sql.prefix(s.connection(), job=job_id).scalar_one())

    # -- failures and expiry ---------------------------------------------------------------

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

    # -- the sequencer ---------------------------------------------------------------------

    @override
    def advance(self, job_id: int) -> None:
        self._sequence(job_id)

    def _sequence(self, job_id: int, *, wall_stop: bool = False, skip_locked: bool = False) -> None:
        """Run the sequencer in a short transaction of its own, then follow up.

        Nothing waits for the sequencer but explicit calls (``advance``): workers pass
        ``skip_locked`` and leave the work to the holder of the lock, whose check after
        committing (:meth:`_after`) sees their completions.
        """
        while True:
            if self.sql.pg and not wall_stop and job_id not in self._general:
                try:
                    done = bfs_round(
                        self.db, self.sql, job_id, skip_locked=skip_locked, want_rows=self._rows
                    )
                except Fallback as fb:
                    if fb.permanent:
                        self._general.add(job_id)
                else:
                    if done is None:
                        return
                    st, admitted = done.state, done.admitted_before
                    if st.admitted > admitted:
                        self._admitted(job_id, admitted, st.admitted, done.admitted_rows)
                    if not done.again:
                        return
                    continue
            with self.db.session(durable=False) as s:
                got = self._sequence_in(s.connection(), job_id, wall_stop, skip_locked)
            if got is None:
                return
            st, admitted = got
            if st.admitted > admitted:
                self._admitted(job_id, admitted, st.admitted)
            if not self._after(job_id, st):
                return
            wall_stop = False

    def _sequence_in(
        self, conn: Connection, job_id: int, wall_stop: bool, skip_locked: bool
    ) -> tuple[sequencer.SeqState, int] | None:
        """Lock the job, push, rank and admit; the new state and the old ``admitted``.

        ``None`` when the job is not running (or, with ``skip_locked``, is being sequenced).
        """
        st = load_state(self.sql, conn, job_id, skip_locked=skip_locked)
        if st is None:
            return None
        admitted = st.admitted
        if wall_stop and st.stopped_by is None:
            sequencer.stop(st, "wall_time", self._first_waiting(conn, job_id, st))
        sequencer.advance(st, SqlSeqStore(self.sql, conn, job_id))
        save_state(self.sql, conn, job_id, st)
        return st, admitted

    def _after(self, job_id: int, st: sequencer.SeqState) -> bool:
        """Whether to run again after a sequencer commit.

        A completion may have landed while we held the lock, unseen by us and not sequenced
        by its worker (it found the lock taken, or read the prefix before we moved it): if the
        rank the prefix now waits for is done, run again. This check after every commit is
        what guarantees that no completion is left unsequenced.
        """
        return not st.finished and st.prefix < st.admitted and self._done_at(job_id, st.prefix)

    @staticmethod
    def _first_waiting(conn: Connection, job_id: int, st: sequencer.SeqState) -> int | None:
        stmt = select(func.min(n.rank)).where(
            n.job_id == job_id,
            n.status == NodeStatus.WAITING,
            n.rank >= st.prefix,
            n.rank < st.admitted,
        )
        return conn.execute(stmt).scalar()

    def _done_at(self, job_id: int, rank: int) -> bool:
        with self.db.session(write=False) as s:
            status = self.sql.status_at(s.connection(), job=job_id, rank=rank).scalar()
        return status == NodeStatus.DONE

    _rows = False
    """Whether :meth:`_admitted` wants the admitted rows (a pipelined round reads them)."""

    def _admitted(self, job_id: int, start: int, stop: int, rows: list[Any] | None = None) -> None:
        """Hook: ranks ``start .. stop-1`` became claimable (the Redis frontier indexes them).

        ``rows``: their ``(job_id, id, rank)`` rows if the round read them already.
        """

    @override
    def tick(self) -> None:
        if self.sql.pg and time.monotonic() >= self._stats_due:
            refresh_statistics(self.db)
            self._stats_due = time.monotonic() + _STATS_EVERY_S
        elapsed = j.active_s + (db_now() - j.segment_start)
        stmt = select(j.id).where(
            j.status == JobStatus.RUNNING,
            j.wall_time_s.is_not(None),
            j.stopped_by.is_(None),
            elapsed >= j.wall_time_s,
        )
        with self.db.session(write=False) as s:
            over = list(s.connection().execute(stmt).scalars())
        for job_id in over:
            self._sequence(job_id, wall_stop=True)
        # Safety net: a job whose prefix rank is done but was left unsequenced (the lock was
        # held by something other than the sequencer when its worker tried) moves on here.
        with self.db.session(write=False) as s:
            stuck = list(self.sql.stuck(s.connection()).scalars())
        for job_id in stuck:
            self._sequence(job_id, skip_locked=True)
