"""A ``dfs``, ``priority`` or ``random`` round in a handful of statements, however long its chain.

These orders pop one rank at a time, and a rank ridden ahead of its turn joins the tree at
once, so a round of a busy job walks a chain of dozens of ranks: for each, the plain store
(:class:`~.sqlseq.SqlSeqStore`) reads the rank's row, reads its children, writes their push
order, picks the next pop and writes its rank, four to six round trips a rank. Under many workers
those round trips were most of a round, and the round is what every rank waits for.

:class:`BufferedSeqStore` serves the same :class:`~.sequencer.SeqStore` calls from rows read
in bulk and writes every row's final push order, rank and slot in one batched statement when
the round ends (:meth:`BufferedSeqStore.flush`, before the job row is saved):

* **pops** come from a heap of the job's open rows (pushed, not ranked), read ``TOP`` at a
  time in the order the plain store's ``pick`` sorts them (``dfs``: push order, last first;
  ``priority``: branch loss, nulls and NaN last, then push order), plus the rows pushed in the
  round. Rows not read sort after every row read, so the heap's head is the true next pop as
  long as one row read is left in it; when none is, the round flushes and reads again.
  ``random`` draws its slots from the open list read whole (:data:`MAX_SLOTS` rows at most:
  a longer list takes the plain store); a round that moved slots clears the moved rows'
  slots before writing the new ones (a slot is unique in its job).
* **children** of a done rank, and their loss, come from one query for every done row in hand
  (rides ahead of their turn usually come in chains: a level of the chain per query).
* **done ranks**: a rank given in the round is done when its row was done when read (a ride
  that ends later is the next round's: the check after the commit runs it).

The sequencer's logic is unchanged (:func:`~.sequencer.advance`); only where its reads come
from and when its writes go out differ, inside the same transaction, so the ranks are the
plain store's ranks.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select
from typing_extensions import override

from ridgerider.schemas.enums import NodeStatus
from ridgerider.services.frontier.sequencer import RankRow
from ridgerider.services.frontier.sqlseq import SqlSeqStore
from ridgerider.services.frontier.statements import Statements
from ridgerider.services.storage.tables import NODES

__all__ = ["BUFFERED_ORDERS", "BufferedSeqStore", "loss_key", "seq_store"]

n = NODES.c
BUFFERED_ORDERS = ("dfs", "priority", "random")
"""The orders whose rounds run on :class:`BufferedSeqStore`."""
MAX_SLOTS = 20_000
"""A ``random`` job's open list up to this length is read whole (else the plain store)."""

TOP = 256
"""Open rows read at a time (a round that pops more reads again)."""
_PARENTS = 256
"""The most parents whose children one query reads."""
_COLS = (n.id, n.status, n.steps, n.branch_loss, n.seq, n.slot)


@dataclass
class _Row:
    """What a round needs of one row of the job."""

    id: int
    done: bool
    steps: int
    loss: float | None
    seq: int | None = None
    slot: int | None = None


def loss_key(loss: float | None) -> tuple[bool, bool, float]:
    """``ORDER BY branch_loss ASC NULLS LAST`` in Python: NaN after every number, NULL last."""
    if loss is None:
        return (True, True, 0.0)
    if math.isnan(loss):
        return (False, True, 0.0)
    return (False, False, loss)


class BufferedSeqStore(SqlSeqStore):
    """One ``dfs``, ``priority`` or ``random`` job's rows in a round: bulk reads, one write."""

    def __init__(self, sql: Statements, conn: Connection, job_id: int, order: str) -> None:
        if order not in BUFFERED_ORDERS:
            raise ValueError(f"order {order!r}: buffered rounds serve {BUFFERED_ORDERS}")
        super().__init__(sql, conn, job_id)
        self.order = order
        self.rows: dict[int, _Row] = {}
        self.kids: dict[int, list[int]] = {}  # parent → children in child order
        self.heap: list[tuple[Any, int]] = []
        self.read: set[int] = set()  # rows of the last read of open rows
        self.read_left = 0  # of them, still in the heap
        self.read_all = False  # the last read returned every open row
        self.read_once = False
        self.first_rank: int | None = None  # the first rank given in this round
        self.given: dict[int, int] = {}  # rank → row id, ranks given in this round
        self.slots: dict[int, int] | None = None  # ``random``: slot → row id, once read
        self.writes: dict[int, dict[str, Any]] = {}  # row id → its final seq, rank and slot
        self.moved = False  # a slot changed hands: clear before writing
        self.statements = 0  # round trips (for tests and profiles)

    # -- reads ------------------------------------------------------------------------------

    def _key(self, row: _Row) -> Any:
        assert row.seq is not None
        return -row.seq if self.order == "dfs" else (*loss_key(row.loss), row.seq)

    def _add(self, r: Any) -> _Row:
        row = self.rows.get(r.id)
        if row is None:
            loss = None if r.branch_loss is None else float(r.branch_loss)
            row = _Row(r.id, r.status == NodeStatus.DONE, r.steps or 0, loss, r.seq, r.slot)
            self.rows[r.id] = row
        return row

    def _read_open(self) -> None:
        """Read the next ``TOP`` open rows in pop order; they replace the heap."""
        stmt = select(*_COLS).where(n.job_id == self.job_id, n.rank.is_(None), n.seq.is_not(None))
        if self.order == "dfs":
            stmt = stmt.order_by(n.seq.desc())
        else:
            stmt = stmt.order_by(n.branch_loss.asc().nulls_last(), n.seq)
        got = self.conn.execute(stmt.limit(TOP)).all()
        self.statements += 1
        self.heap, self.read = [], set()
        for r in got:
            row = self._add(r)
            row.seq = r.seq
            self.heap.append((self._key(row), row.id))
            self.read.add(row.id)
        heapq.heapify(self.heap)
        self.read_left, self.read_all, self.read_once = len(got), len(got) < TOP, True

    def _read_children(self, parent_id: int) -> None:
        """Read the children of ``parent_id`` and of every other done row in hand."""
        more = (r.id for r in self.rows.values() if r.done and r.id not in self.kids)
        want = [parent_id, *(i for i in more if i != parent_id)][:_PARENTS]
        stmt = (
            select(n.parent_id, *_COLS)
            .where(n.parent_id.in_(want))
            .order_by(n.parent_id, n.child_index)
        )
        found: dict[int, list[int]] = {p: [] for p in want}
        for r in self.conn.execute(stmt):
            found[r.parent_id].append(self._add(r).id)
        self.statements += 1
        self.kids.update(found)

    def _row(self, node_id: int) -> _Row:
        row = self.rows.get(node_id)
        if row is None:
            stmt = select(*_COLS).where(n.id == node_id)
            row = self._add(self.conn.execute(stmt).one())
            self.statements += 1
        return row

    # -- the sequencer's store ---------------------------------------------------------------

    @override
    def root_id(self) -> int:
        root = super().root_id()
        self.statements += 1
        self._row(root)
        return root

    @override
    def done_from(self, start: int, stop: int) -> list[RankRow]:
        first = self.first_rank if self.first_rank is not None else stop
        before: list[RankRow] = []
        if start < first:  # ranks given before this round: the database knows them
            before = super().done_from(start, min(stop, first))
            self.statements += 1
        mine = sorted(r for r in self.given if max(start, first) <= r < stop)
        rows = [(r, self.rows[self.given[r]]) for r in mine]
        return before + [RankRow(r, row.id, row.steps) for r, row in rows if row.done]

    @override
    def children(self, parent_id: int) -> list[int]:
        if parent_id not in self.kids:
            self._read_children(parent_id)
        return list(self.kids[parent_id])

    @override
    def set_order(self, rows: Sequence[tuple[int, int, int | None, int | None]]) -> None:
        for node_id, seq, rank, slot in rows:
            if rank is not None:
                raise ValueError("buffered rounds push unranked rows")
            row = self._write(node_id)
            row.seq = seq
            self.writes[node_id]["b_seq"] = seq
            if slot is not None:
                self._put(node_id, slot)
            if self.read_once and self.order != "random":
                heapq.heappush(self.heap, (self._key(row), node_id))

    @override
    def pick(self, order: str) -> int:
        if not self.read_once or (self.read_left == 0 and not self.read_all):
            self.flush()  # the read must see this round's pushes and ranks
            self._read_open()
        _, node_id = heapq.heappop(self.heap)
        if node_id in self.read:
            self.read_left -= 1
        return node_id

    @override
    def at_slot(self, slot: int) -> int:
        if self.slots is None:
            self.flush()  # the read must see this round's pushes
            stmt = select(*_COLS).where(n.job_id == self.job_id, n.slot.is_not(None))
            self.slots = {r.slot: self._add(r).id for r in self.conn.execute(stmt)}
            self.statements += 1
        return self.slots[slot]

    @override
    def set_rank(self, node_id: int, rank: int) -> None:
        if self.first_rank is None:
            self.first_rank = rank
        self.given[rank] = node_id
        row = self._write(node_id)
        self.writes[node_id]["b_rank"] = rank
        if row.slot is not None:
            self._put(node_id, None)

    @override
    def move_slot(self, node_id: int, slot: int) -> None:
        self._write(node_id)
        self._put(node_id, slot)
        self.moved = True

    def _write(self, node_id: int) -> _Row:
        """The row, with a pending write of its current state (to change it in place)."""
        row = self._row(node_id)
        if node_id not in self.writes:
            self.writes[node_id] = {
                "b_id": node_id, "b_seq": row.seq, "b_rank": None, "b_slot": row.slot,
            }  # fmt: skip
        return row

    def _put(self, node_id: int, slot: int | None) -> None:
        """Move a row to ``slot`` (``None``: out of the open list), in hand and pending."""
        row = self.rows[node_id]
        if self.slots is not None:
            if row.slot is not None and self.slots.get(row.slot) == node_id:
                del self.slots[row.slot]
            if slot is not None:
                self.slots[slot] = node_id
        row.slot = slot
        self.writes[node_id]["b_slot"] = slot

    @override
    def flush(self) -> None:
        """Write every changed row's final push order, rank and slot, in one statement.

        Slots are unique in a job, and a slot moved in the round may be held in the database
        by the row that is leaving it: the moved rows' slots are cleared first.
        """
        if not self.writes:
            return
        if self.moved:
            self.sql.clear_slot.many(self.conn, [{"b_id": i} for i in self.writes])
            self.statements += 1
        self.sql.set_order.many(self.conn, list(self.writes.values()))
        self.statements += 1
        self.writes, self.moved = {}, False


def seq_store(
    sql: Statements, conn: Connection, job_id: int, order: str, open_rows: int
) -> SqlSeqStore:
    """The store of one sequencer round: buffered, unless ``random``'s open list is too long.

    ``open_rows``: the job's open list (pushed, not ranked), which ``random`` reads whole.
    """
    if order in BUFFERED_ORDERS and (order != "random" or open_rows <= MAX_SLOTS):
        return BufferedSeqStore(sql, conn, job_id, order)
    return SqlSeqStore(sql, conn, job_id)
