"""A sequencer round of a BFS job on PostgreSQL in three round trips.

The general path (:meth:`DatabaseFrontier._sequence_in` on a SQLAlchemy session) waits for the
server once per statement and again for the commit and the checks after it. BFS, the one order
that many workers run in parallel, needs only the job row, the done rows after the prefix and
one set-based ``UPDATE``, so a round here is pipelined: (1) lock and read the job row together
with the done rows ahead of its prefix, (2) rank the children of the finished run, (3) save the
counters, read the newly admitted rows for an index, commit, and check whether the rank the
prefix now waits for got done meanwhile (the check :meth:`DatabaseFrontier._after` makes). The
sequencer's logic is the same function (:func:`sequencer.advance`) on a store whose reads are
served from what round trip (1) fetched. Anything else (other orders, the first push, the end
of a job, a wall-time stop) raises :class:`Fallback` before committing, and the caller runs
the general path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from typing_extensions import override

import ridgerider.services.frontier.sequencer as sequencer
from ridgerider.schemas.enums import NodeStatus
from ridgerider.services.frontier.pgpath import ASYNC, run
from ridgerider.services.frontier.sequencer import RankRow, SeqState, SeqStore
from ridgerider.services.frontier.sqlseq import save_params, state_of
from ridgerider.services.frontier.statements import Result, Statements
from ridgerider.services.storage.session import Database, Pipe

__all__ = ["Fallback", "Round", "bfs_round"]

_DONE_AHEAD = f"""
SELECT n.rank, n.id, n.steps FROM nodes AS n JOIN jobs AS j ON j.id = n.job_id
WHERE n.job_id = %(job)s AND n.status = '{NodeStatus.DONE.value}' AND n.rank >= j.prefix
    AND n.rank < j.prefix + %(batch)s
ORDER BY n.rank
"""


class Fallback(Exception):  # noqa: N818 (control flow, not an error)
    """A round that needs the general path (``permanent``: every round of this job does)."""

    def __init__(self, permanent: bool = False) -> None:
        super().__init__("general sequencer path")
        self.permanent = permanent


@dataclass(frozen=True)
class Round:
    """What a committed round did."""

    state: SeqState
    admitted_before: int
    admitted_rows: list[Any] | None
    """``(job_id, id, rank)`` of the newly admitted waiting rows, when asked for."""
    again: bool
    """The rank the prefix waits for was done by the time the round committed."""


class _BfsStore(SeqStore):
    """A BFS job's rows inside a pipelined round; done rows ahead of the prefix prefetched."""

    def __init__(
        self, sql: Statements, pipe: Pipe, job_id: int, prefix: int, ahead: list[RankRow]
    ) -> None:
        self.sql, self.pipe, self.job_id = sql, pipe, job_id
        self.ahead, self.start, self.stop = ahead, prefix, prefix + sequencer.BATCH

    @override
    def done_from(self, start: int, stop: int) -> list[RankRow]:
        if self.start <= start and stop <= self.stop:
            # Rows done since the prefetch are seen by the check after the commit.
            return [r for r in self.ahead if start <= r.rank < stop]
        cur = run(self.pipe, self.sql.done_from, {"job": self.job_id, "start": start, "stop": stop})
        self.pipe.sync()
        return [RankRow(r.rank, r.id, r.steps or 0) for r in Result(cur)]

    @override
    def push_bfs(self, start: int, stop: int, first: int) -> int:
        params = {"job": self.job_id, "start": start, "stop": stop, "first": first}
        cur = run(self.pipe, self.sql.push_bfs, params)
        self.pipe.sync()
        return int(cur.rowcount)

    # BFS after its first push needs none of these: the general path handles the rest.
    def root_id(self) -> int:
        raise Fallback

    def children(self, parent_id: int) -> list[int]:
        raise Fallback

    def set_order(self, rows: Sequence[tuple[int, int, int | None, int | None]]) -> None:
        raise Fallback

    def pick(self, order: str) -> int:
        raise Fallback

    def at_slot(self, slot: int) -> int:
        raise Fallback

    def set_rank(self, node_id: int, rank: int) -> None:
        raise Fallback

    def move_slot(self, node_id: int, slot: int) -> None:
        raise Fallback


def bfs_round(
    db: Database, sql: Statements, job_id: int, *, skip_locked: bool, want_rows: bool
) -> Round | None:
    """Run one sequencer round of a running BFS job; ``None`` if not running (or locked).

    Raises :class:`Fallback` (nothing committed) when the general path is needed.
    """
    with db.pipeline() as pipe:
        run(pipe, "BEGIN")
        run(pipe, ASYNC)
        load = run(pipe, sql.load_skip if skip_locked else sql.load, {"job": job_id})
        ahead = run(pipe, _DONE_AHEAD, {"job": job_id, "batch": sequencer.BATCH})
        pipe.sync()
        row = Result(load).first()
        if row is None:
            run(pipe, "COMMIT")
            return None
        st = state_of(row)
        if st.order != "bfs":
            raise Fallback(permanent=True)
        if st.pushed == 0:
            raise Fallback
        before = st.admitted
        done = [RankRow(r[0], r[1], r[2] or 0) for r in ahead.fetchall()]
        sequencer.advance(st, _BfsStore(sql, pipe, job_id, st.prefix, done))
        if st.finished:
            raise Fallback  # the job ends: its transition is the general path's
        run(pipe, sql.save, save_params(job_id, st))
        rows = None
        if want_rows and st.admitted > before:
            params = {"job": job_id, "start": before, "stop": st.admitted}
            rows = run(pipe, sql.waiting_range, params)
        run(pipe, "COMMIT")
        check = None
        if st.prefix < st.admitted:
            check = run(pipe, sql.status_at, {"job": job_id, "rank": st.prefix})
    again = check is not None and check.fetchone() == (NodeStatus.DONE,)
    return Round(st, before, None if rows is None else Result(rows).all(), again)
