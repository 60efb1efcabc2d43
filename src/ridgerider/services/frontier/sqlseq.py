"""The sequencer's store on SQL rows, and loading/saving a job's sequencer state."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select, update
from typing_extensions import override

from ridgerider.schemas.enums import JobStatus
from ridgerider.services.frontier.sequencer import RankRow, SeqState, SeqStore
from ridgerider.services.frontier.statements import Statements, json_value
from ridgerider.services.storage.sqlrows import apply_transition
from ridgerider.services.storage.tables import NODES

__all__ = ["SqlSeqStore", "load_state", "save_params", "save_state", "state_of"]

n = NODES.c


class SqlSeqStore(SeqStore):
    """One job's rows, read and written inside the sequencer's transaction."""

    def __init__(self, sql: Statements, conn: Connection, job_id: int) -> None:
        self.sql, self.conn, self.job_id = sql, conn, job_id

    @override
    def root_id(self) -> int:
        stmt = select(n.id).where(n.job_id == self.job_id, n.key == "")
        return int(self.conn.execute(stmt).scalar_one())

    @override
    def done_from(self, start: int, stop: int) -> list[RankRow]:
        rows = self.sql.done_from(self.conn, job=self.job_id, start=start, stop=stop)
        return [RankRow(r.rank, r.id, r.steps or 0) for r in rows]

    @override
    def children(self, parent_id: int) -> list[int]:
        return self.sql.children_of(self.conn, parent=parent_id).scalars()

    @override
    def push_bfs(self, start: int, stop: int, first: int) -> int:
        return self.sql.push_bfs(
            self.conn, job=self.job_id, start=start, stop=stop, first=first
        ).rowcount

    @override
    def set_order(self, rows: Sequence[tuple[int, int, int | None, int | None]]) -> None:
        params = [{"b_id": i, "b_seq": q, "b_rank": r, "b_slot": s} for i, q, r, s in rows]
        self.sql.set_order.many(self.conn, params)

    @override
    def pick(self, order: str) -> int:
        stmt = select(n.id).where(n.job_id == self.job_id, n.rank.is_(None), n.seq.is_not(None))
        if order == "dfs":
            stmt = stmt.order_by(n.seq.desc())
        else:
            stmt = stmt.order_by(n.branch_loss.asc().nulls_last(), n.seq)
        return int(self.conn.execute(stmt.limit(1)).scalar_one())

    @override
    def at_slot(self, slot: int) -> int:
        stmt = select(n.id).where(n.job_id == self.job_id, n.slot == slot)
        return int(self.conn.execute(stmt).scalar_one())

    @override
    def set_rank(self, node_id: int, rank: int) -> None:
        self.conn.execute(update(NODES).where(n.id == node_id).values(rank=rank, slot=None))

    @override
    def move_slot(self, node_id: int, slot: int) -> None:
        self.conn.execute(update(NODES).where(n.id == node_id).values(slot=slot))

    def flush(self) -> None:
        """Write what the store held back before the job row is saved (here: nothing)."""


def load_state(
    sql: Statements, conn: Connection, job_id: int, *, skip_locked: bool = False
) -> SeqState | None:
    """Lock a running job's row and read its sequencer state.

    The lock is ``FOR NO KEY UPDATE``, which concurrent child inserts (their foreign key takes
    ``KEY SHARE``) do not conflict with. ``None`` if the job is not running, or if it is
    locked and ``skip_locked``.
    """
    row = (sql.load_skip if skip_locked else sql.load)(conn, job=job_id).first()
    return None if row is None else state_of(row)


def state_of(row: Any) -> SeqState:
    """The sequencer state of a job row read by the ``load`` statement."""
    settings = json_value(row.settings)
    return SeqState(
        order=settings["order"],
        seed=row.seed,
        pushed=row.pushed,
        ranked=row.ranked,
        prefix=row.prefix,
        prefix_steps=row.prefix_steps,
        admitted=row.admitted,
        stopped_by=row.stopped_by,
        rng_state=json_value(row.rng_state),
        max_nodes=settings["max_nodes"],
        max_steps=settings["max_steps"],
        max_ride_steps=settings["max_ride_steps"],
    )


def save_params(job_id: int, st: SeqState) -> dict[str, Any]:
    """Parameters of the ``save`` statement."""
    return {
        "job": job_id,
        "v_pushed": st.pushed,
        "v_ranked": st.ranked,
        "v_prefix": st.prefix,
        "v_prefix_steps": st.prefix_steps,
        "v_admitted": st.admitted,
        "v_stopped_by": st.stopped_by,
        "v_rng_state": json.dumps(st.rng_state),
    }


def save_state(sql: Statements, conn: Connection, job_id: int, st: SeqState) -> None:
    """Write the sequencer counters back; a finished job becomes ``succeeded``."""
    sql.save(conn, **save_params(job_id, st))
    if st.finished:
        apply_transition(conn, job_id, JobStatus.SUCCEEDED)
