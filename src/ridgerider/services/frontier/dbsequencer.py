"""The database frontier's sequencer: runs in short transactions of its own, after commits.

A completion never locks the job row. The sequencer runs afterwards in a short transaction,
started by the worker whose rank the finished prefix waits for; a worker that finds it taken
leaves the work to its holder, which checks after committing whether the prefix rank got done
meanwhile, and the reaper's tick re-runs any job left with a done prefix rank, so no completion
is ever left unsequenced and nobody waits for the job row. A BFS round on PostgreSQL is
pipelined (:mod:`.pgseq`); every other round takes the general path on a SQLAlchemy session.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, func, select
from typing_extensions import override

import ridgerider.services.frontier.sequencer as sequencer
from ridgerider.schemas.enums import JobStatus, NodeStatus
from ridgerider.services.frontier.base import Frontier
from ridgerider.services.frontier.pgcare import TableCare
from ridgerider.services.frontier.pgseq import Fallback, bfs_round
from ridgerider.services.frontier.planner import PLANNED_ORDERS, plan, speculating, stale
from ridgerider.services.frontier.seqbuffer import seq_store
from ridgerider.services.frontier.speculation import DEFAULT_SPECULATION
from ridgerider.services.frontier.sqlseq import load_state, save_state
from ridgerider.services.frontier.statements import json_value, statements
from ridgerider.services.storage.session import db_now
from ridgerider.services.storage.sql import SQLStorage
from ridgerider.services.storage.tables import JOBS, NODES

__all__ = ["DatabaseSequencer"]

n, j = NODES.c, JOBS.c
_STATS_EVERY_S = 5.0
"""How often one process checks whether the frontier's tables need ``ANALYZE`` or ``VACUUM``."""


class DatabaseSequencer(Frontier):
    """The database frontier's storage, statements and sequencer (leases: its subclasses)."""

    def __init__(
        self,
        storage: SQLStorage,
        *,
        lease_s: float | None = None,
        speculation: int = DEFAULT_SPECULATION,
    ) -> None:
        super().__init__()
        self.speculation = speculation
        """Rides a job may have ahead of its ranks (0: claim admitted branches only)."""
        self.storage: SQLStorage = storage
        self.db = storage.db
        self.sql = statements(self.db.dialect, self.db.engine.dialect)
        self.lease_s = lease_s
        self._general: set[int] = set()  # jobs whose sequencer rounds take the general path
        self._stats_due = 0.0  # when this process next checks its tables (TableCare)
        self._care = TableCare(self.db)
        self._order_of: dict[int, str] = {}  # job → search order (it never changes)
        self._plan_asked: set[int] = set()  # jobs whose next round plans (see plan_idle)
        self._idle_planned: dict[int, int] = {}  # job → its ranks when an idle worker last planned

    def _orders(self, job_ids: set[int]) -> dict[int, str]:
        """The search order of each job (read once per job and process)."""
        missing = [i for i in job_ids if i not in self._order_of]
        if missing:
            with self.db.session(write=False) as s:
                rows = s.connection().execute(select(j.id, j.settings).where(j.id.in_(missing)))
                for job_id, settings in rows:
                    self._order_of[job_id] = str(json_value(settings).get("order", "bfs"))
        return {i: self._order_of.get(i, "bfs") for i in job_ids}

    def _prefix(self, job_id: int) -> int:
        """The job's prefix rank: every rank below it is done."""
        with self.db.session(write=False) as s:
            return int(self.sql.prefix(s.connection(), job=job_id).scalar_one())

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
            if st.finished and self.sql.pg:
                self._care.start(tables=False)  # its compaction freed its large branches
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
        admitted, ranked = st.admitted, st.ranked
        if wall_stop and st.stopped_by is None:
            sequencer.stop(st, "wall_time", self._first_waiting(conn, job_id, st))
        store = seq_store(self.sql, conn, job_id, st.order, st.pushed - st.ranked)
        sequencer.advance(st, store)
        store.flush()
        save_state(self.sql, conn, job_id, st)
        asked = job_id in self._plan_asked  # an idle worker wants a first plan
        self._plan_asked.discard(job_id)
        replan = self._plans(st) and (asked or speculating(conn, job_id))
        if replan and stale(conn, job_id, ranked, st, self.speculation):
            plan(conn, job_id, st, self.speculation)
        return st, admitted

    def _plans(self, st: sequencer.SeqState) -> bool:
        """Whether the job's next ranks are planned (``planner``): random or priority, admitting."""
        return st.order in PLANNED_ORDERS and self.speculation > 0 and st.stopped_by is None

    def plan_idle(self, job_id: int | None) -> None:
        """A worker found nothing to claim: plan the job's next ranks (or every running job's).

        Plans are made only while a job rides ahead (one worker needs none), so the first
        comes from a worker with nothing to do: once per rank of a job and process (a read of
        the job row otherwise), in a sequencer round (one that holds the job's lock also
        sequences it; a job being sequenced is left to its sequencer).
        """
        stmt = select(j.id, j.ranked).where(j.status == JobStatus.RUNNING, j.stopped_by.is_(None))
        if job_id is not None:
            stmt = stmt.where(j.id == job_id)
        with self.db.session(write=False) as s:
            ranked = dict(s.connection().execute(stmt).all())
        orders = self._orders(set(ranked))
        for job, rank in ranked.items():
            if orders[job] not in PLANNED_ORDERS or self._idle_planned.get(job) == rank:
                continue
            self._idle_planned[job] = rank
            with self.db.session(write=False) as s:
                if speculating(s.connection(), job):
                    continue  # its rounds plan already
            self._plan_asked.add(job)
            self._sequence(job, skip_locked=True)

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
    def close(self) -> None:
        super().close()
        self._care.join(10.0)

    @override
    def tick(self) -> None:
        if self.sql.pg and time.monotonic() >= self._stats_due:
            self._care.start()  # in a thread of its own: a VACUUM may wait long
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
