"""The sequencer's store on SQL rows, and loading/saving a job's sequencer state."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, bindparam, select, update
from typing_extensions import override

from ridgerider.services.frontier.sequencer import BATCH, RankRow, SeqState, SeqStore
from ridgerider.services.storage.models import utcnow
from ridgerider.services.storage.sql import apply_transition
from ridgerider.services.storage.tables import JOBS, NODES

__all__ = ["SqlSeqStore", "load_state", "save_state"]

n = NODES.c
_KID = NODES.alias("kid")
_BY_RANK = (
    select(n.rank, n.id, n.status, n.steps, _KID.c.id.label("kid"))
    .outerjoin(_KID, _KID.c.parent_id == n.id)
    .where(
        n.job_id == bindparam("b_job"),
        n.rank >= bindparam("b_start"),
        n.rank < bindparam("b_stop"),
    )
    .order_by(n.rank, _KID.c.child_index)
)
_SET_ORDER = (
    update(NODES)
    .where(n.id == bindparam("b_id"))
    .values(seq=bindparam("b_seq"), rank=bindparam("b_rank"), slot=bindparam("b_slot"))
)


class SqlSeqStore(SeqStore):
    """One job's rows, read and written inside the sequencer's transaction."""

    def __init__(self, conn: Connection, job_id: int) -> None:
        self.conn, self.job_id = conn, job_id

    @override
    def root_id(self) -> int:
        stmt = select(n.id).where(n.job_id == self.job_id, n.key == "")
        return int(self.conn.execute(stmt).scalar_one())

    @override
    def by_rank(self, start: int, stop: int) -> list[RankRow]:
        params = {"b_job": self.job_id, "b_start": start, "b_stop": stop}
        rows: list[RankRow] = []
        for r in self.conn.execute(_BY_RANK, params):
            if not rows or rows[-1].rank != r.rank:
                if len(rows) == BATCH:
                    break
                rows.append(RankRow(r.rank, r.id, r.status == "done", r.steps or 0, []))
            if r.kid is not None:
                rows[-1].children.append(r.kid)
        return rows

    @override
    def set_order(self, rows: Sequence[tuple[int, int, int | None, int | None]]) -> None:
        params = [{"b_id": i, "b_seq": q, "b_rank": r, "b_slot": s} for i, q, r, s in rows]
        self.conn.execute(_SET_ORDER, params)

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


def load_state(conn: Connection, job_id: int, *, skip_locked: bool = False) -> SeqState | None:
    """Lock a running job's row and read its sequencer state.

    The lock is ``FOR NO KEY UPDATE``, which concurrent child inserts (their foreign key takes
    ``KEY SHARE``) do not conflict with. ``None`` if the job is not running, or if it is
    locked and ``skip_locked``.
    """
    j = JOBS.c
    stmt = (
        select(JOBS)
        .where(j.id == job_id, j.status == "running")
        .with_for_update(key_share=True, skip_locked=skip_locked)
    )
    row = conn.execute(stmt).first()
    if row is None:
        return None
    settings = row.settings
    st = SeqState(
        order=settings["order"],
        seed=row.seed,
        pushed=row.pushed,
        ranked=row.ranked,
        prefix=row.prefix,
        prefix_steps=row.prefix_steps,
        admitted=row.admitted,
        stopped_by=row.stopped_by,
        rng_state=row.rng_state,
        max_nodes=settings["max_nodes"],
        max_steps=settings["max_steps"],
        max_ride_steps=settings["max_ride_steps"],
    )
    return st


def save_state(conn: Connection, job_id: int, st: SeqState) -> None:
    """Write the sequencer counters back; a finished job becomes ``succeeded``."""
    conn.execute(
        update(JOBS)
        .where(JOBS.c.id == job_id)
        .values(
            pushed=st.pushed,
            ranked=st.ranked,
            prefix=st.prefix,
            prefix_steps=st.prefix_steps,
            admitted=st.admitted,
            stopped_by=st.stopped_by,
            rng_state=st.rng_state,
            updated_at=utcnow(),
        )
    )
    if st.finished:
        apply_transition(conn, job_id, "succeeded")
