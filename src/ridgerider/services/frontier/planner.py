"""What ``random`` and ``priority`` jobs rank next, as far as it is known: what to ride ahead.

**random.** The sequencer pops a ``random`` job's next rank with the job's seeded generator
from its open list (``rng.randrange(size)``, the drawn slot swapped with the last, as
``core``'s ``MemoryFrontier`` does), once the current rank's children have been appended. So
the draws ahead are fixed by the generator's state and the list's sizes: :func:`plan` replays
them on a copy of the state, taking each drawn row's children from the archive when it was
already ridden (ahead of its turn) and predicting their number (its parent's) when not.
Python's ``randrange(n)`` takes ``n.bit_length()`` random bits and keeps a value below ``n``,
so a predicted size that is off by a few children usually draws the same slot.

**priority.** The rank in flight's children are not known until its ride ends, and their
loss (where it ended) is usually below every open branch's, so its subtree comes next;
:func:`plan` replays the pops after it: the open rows by (branch loss, push order), a row
ridden ahead pushing its children when popped, as the sequencer will.

The rows predicted to come next get a speculation key that sorts before every other
(``0x00``, their position, then their own key; own keys start with ``0x01``), so speculative
claims take them first; the previous plan's keys are restored first. A plan is a guess that
costs at most the rides it sends ahead: the sequencer alone decides the tree.
"""

from __future__ import annotations

import heapq
import random
import struct
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, LargeBinary, and_, case, func, literal, or_, select, update

from ridgerider.schemas.enums import NodeStatus
from ridgerider.services.frontier.seqbuffer import loss_key
from ridgerider.services.frontier.sequencer import SeqState
from ridgerider.services.frontier.speculation import OWN
from ridgerider.services.storage.tables import NODES

__all__ = ["MAX_HORIZON", "PLANNED", "PLANNED_ORDERS", "plan", "speculating", "stale"]

n = NODES.c
PLANNED = b"\x00"
"""First byte of a planned row's key (own keys start with ``0x01``)."""

PLANNED_ORDERS = ("random", "priority")
"""The orders whose next ranks are planned (``dfs``'s key needs no plan)."""

_PREFETCH_SLOTS = 20_000
"""A ``random`` job's open list up to this length is read whole for a plan (else slot by slot)."""

MAX_HORIZON = 128
"""The most rows one plan names (a plan's cost grows with it; the sequencer holds the job)."""


@dataclass
class _Row:
    id: int
    parent_id: int | None
    status: str
    spec: bytes | None
    loss: float | None
    depth: int
    children: list[_Row] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.status == NodeStatus.DONE


_COLS = (n.id, n.parent_id, n.status, n.spec, n.branch_loss, n.depth)


class _Rows:
    """The rows a plan reads, each fetched once (a ridden row with its children)."""

    def __init__(self, conn: Connection, job_id: int) -> None:
        self.conn, self.job_id = conn, job_id
        self.rows: dict[int, _Row] = {}
        self.counts: dict[int, int] = {}
        self._by_depth: dict[int, int] | None = None

    def _add(self, r: Any) -> _Row:
        row = self.rows.get(r.id)
        if row is None:
            row = _Row(r.id, r.parent_id, r.status, r.spec, r.branch_loss, r.depth)
            self.rows[row.id] = row
        return row

    def _with_children(self, rows: list[_Row]) -> list[_Row]:
        """``rows``, the children of the ridden ones (and theirs) read level by level.

        One query a level of rides done ahead, not one a row: a round trip costs far more
        than its rows on a server.
        """
        todo = [r for r in rows if r.done and r.id not in self.counts]
        while todo:
            stmt = (
                select(*_COLS)
                .where(n.parent_id.in_(sorted({r.id for r in todo})))
                .order_by(n.parent_id, n.child_index)
            )
            found: dict[int, list[_Row]] = {}
            for c in self.conn.execute(stmt):
                found.setdefault(c.parent_id, []).append(self._add(c))
            for r in todo:
                r.children = found.get(r.id, [])
                self.counts[r.id] = len(r.children)
            todo = [c for r in todo for c in r.children if c.done and c.id not in self.counts]
        return rows

    def first(self, where: Any) -> _Row | None:
        r = self.conn.execute(select(*_COLS).where(n.job_id == self.job_id, where)).first()
        return None if r is None else self._with_children([self._add(r)])[0]

    def slots(self, size: int) -> dict[int, _Row]:
        """The open list of a ``random`` job by slot, in one query (``{}`` if it is too long)."""
        if size > _PREFETCH_SLOTS:
            return {}
        stmt = select(*_COLS, n.slot).where(n.job_id == self.job_id, n.slot.is_not(None))
        rows = {r.slot: self._add(r) for r in self.conn.execute(stmt)}
        self._with_children(list(rows.values()))
        return rows

    def heap(self, limit: int) -> list[_Row]:
        """The open rows in ``priority``'s pop order (branch loss, then push order)."""
        stmt = (
            select(*_COLS)
            .where(n.job_id == self.job_id, n.rank.is_(None), n.seq.is_not(None))
            .order_by(n.branch_loss.asc().nulls_last(), n.seq)
            .limit(limit)
        )
        return self._with_children([self._add(r) for r in self.conn.execute(stmt)])

    def by_depth(self) -> dict[int, int]:
        """The commonest number of children of the ridden nodes at each depth."""
        if self._by_depth is None:
            stmt = (
                select(n.depth, n.n_children, func.count())
                .where(n.job_id == self.job_id, n.status == NodeStatus.DONE)
                .group_by(n.depth, n.n_children)
            )
            best: dict[int, tuple[int, int]] = {}
            for depth, kids, count in self.conn.execute(stmt):
                if kids is not None and count > best.get(depth, (-1, 0))[0]:
                    best[depth] = (count, kids)
            self._by_depth = {d: k for d, (_, k) in best.items()}
        return self._by_depth

    def predicted_children(self, row: _Row | None, fallback: int) -> int:
        """A row's number of children: known once ridden, else predicted.

        The prediction is the commonest number at the row's depth among ridden nodes (trees
        end in leaves at some depth), else its parent's.
        """
        if row is None:
            return fallback
        if row.done:
            return len(row.children)
        if row.depth in self.by_depth():
            return self.by_depth()[row.depth]
        parent = row.parent_id
        if parent is not None and parent not in self.counts:
            stmt = select(n.n_children).where(n.id == parent)
            self.counts[parent] = int(self.conn.execute(stmt).scalar() or 0)
        return self.counts.get(parent, fallback) if parent is not None else fallback


def speculating(conn: Connection, job_id: int) -> bool:
    """Whether the job rides ahead (rows leased or done, unranked) or has a plan waiting."""
    ahead = select(n.id).where(
        n.job_id == job_id, n.rank.is_(None), n.status.in_((NodeStatus.LEASED, NodeStatus.DONE))
    )
    if conn.execute(ahead.limit(1)).first() is not None:
        return True
    waiting = select(n.id).where(
        n.job_id == job_id, n.status == NodeStatus.WAITING, n.spec.is_not(None), n.spec < OWN
    )
    return conn.execute(waiting.limit(1)).first() is not None


def stale(conn: Connection, job_id: int, first_rank: int, st: SeqState, horizon: int) -> bool:
    """Whether the job needs a new plan after a round that ranked ``first_rank ..``.

    Yes when a rank went to a row the plan did not name, or passed over planned rows that
    still wait (everything after a draw or pop that did not happen was predicted from it), or
    when fewer than half a plan's rows still wait.
    """
    ranked = select(n.spec).where(n.job_id == job_id, n.rank >= first_rank, n.rank < st.ranked)
    specs = [b"" if s is None else bytes(s) for s in conn.execute(ranked).scalars()]
    if any(s[:1] != PLANNED for s in specs):
        return True
    waiting = (n.job_id == job_id, n.status == NodeStatus.WAITING, n.spec.is_not(None))
    if specs:
        passed = select(n.id).where(*waiting, n.spec < max(s[:3] for s in specs)).limit(1)
        if conn.execute(passed).first() is not None:
            return True
    left = select(func.count()).where(*waiting, n.spec < OWN)
    return int(conn.execute(left).scalar_one()) < max(1, min(horizon, MAX_HORIZON) // 2)


def plan(conn: Connection, job_id: int, st: SeqState, horizon: int) -> list[int]:
    """Key first the rows a ``random`` or ``priority`` job will most likely rank next.

    Call after a sequencer round that left the job waiting for its last rank (every ranked
    row done but that one). Restores the previous plan's keys; returns the ids of the rows
    keyed, in predicted order.
    """
    horizon = min(horizon, MAX_HORIZON)
    planned: list[int] = []
    rows = _Rows(conn, job_id)
    if horizon > 0 and st.stopped_by is None and st.ranked > 0:
        planned = (_plan_random if st.order == "random" else _plan_priority)(rows, st, horizon)
    _rekey(conn, job_id, rows, planned)
    return planned


def _plan_priority(rows: _Rows, st: SeqState, horizon: int) -> list[int]:
    """``priority``'s next pops among the rows known, the rank in flight's subtree first.

    The children of the rank in flight are not known yet; their loss is where its ride ends,
    below its own in a descent, so they and their subtree usually come next. What follows is
    replayed: the open rows by (branch loss, push order), a row ridden ahead pushing its
    children when popped, as the sequencer will.
    """
    key = lambda r: loss_key(r.loss)  # noqa: E731  (the database's order: NaN, then NULL, last)
    opened = rows.heap(4 * horizon)
    pops: list[tuple[tuple[bool, bool, float], int, int]] = [
        (key(r), i, r.id) for i, r in enumerate(opened)
    ]
    heapq.heapify(pops)
    seq = len(opened)
    planned: list[int] = []
    for _ in range(8 * horizon):
        if not pops or len(planned) >= horizon:
            break
        row = rows.rows[heapq.heappop(pops)[2]]
        if row.done:
            for child in row.children:
                heapq.heappush(pops, (key(child), seq, child.id))
                seq += 1
        elif row.status == NodeStatus.WAITING:
            planned.append(row.id)
    return planned


def _plan_random(rows: _Rows, st: SeqState, horizon: int) -> list[int]:
    """``random``'s next draws: the generator's state replayed on the open list."""
    rng = random.Random(st.seed)
    if st.rng_state is not None:
        version, internal, gauss = st.rng_state
        rng.setstate((version, tuple(internal), gauss))
    size = st.pushed - st.ranked  # the open list, without the current rank's children
    virtual: dict[int, _Row | None] = {}  # slots the replay changed (None: no row yet)
    known_slots = rows.slots(size)

    def at(slot: int) -> _Row | None:
        if slot in virtual:
            return virtual[slot]
        return known_slots[slot] if known_slots else rows.first(n.slot == slot)

    pending = rows.first(n.rank == st.ranked - 1)
    fallback = 2
    planned: list[int] = []
    for _ in range(4 * horizon):
        if len(planned) >= horizon:
            break
        kids = rows.predicted_children(pending, fallback)
        known = pending.children if pending is not None and pending.done else []
        for i in range(kids):
            virtual[size + i] = known[i] if i < len(known) else None
        size += kids
        if size == 0:
            break
        i = rng.randrange(size)
        chosen, last = at(i), at(size - 1)
        virtual[i] = last
        virtual.pop(size - 1, None)
        size -= 1
        if chosen is not None and chosen.status == NodeStatus.WAITING:
            planned.append(chosen.id)
        pending = chosen
        fallback = kids
    return planned


def _own(spec: bytes) -> bytes:
    """A row's own key, whether or not a plan prefixed it (``PLANNED``, its position)."""
    return spec[3:] if spec[:1] == PLANNED else spec


def _rekey(conn: Connection, job_id: int, rows: _Rows, planned: list[int]) -> None:
    """One statement: the previous plan's rows get their own keys back, ``planned`` theirs.

    Only waiting rows: never a leased one (its worker's heartbeat updates it, and a plan holding
    it while waiting for another row the heartbeat holds would deadlock on PostgreSQL). The
    other writers of waiting rows are claims, which skip locked rows and never wait, and the
    sequencer, which this is: one statement, where a row at a time cost a round trip each
    (160 ms a plan under 64 workers on PostgreSQL, measured).
    """
    keys: dict[int, bytes] = {}
    for pos, node_id in enumerate(planned):
        spec = rows.rows[node_id].spec
        if spec is not None:
            keys[node_id] = PLANNED + struct.pack(">H", pos) + _own(bytes(spec))
    was_planned = and_(n.spec.is_not(None), n.spec < OWN)
    own = func.substr(n.spec, len(PLANNED) + 3)  # 1-based: after the prefix and position
    if keys:
        ids = sorted(keys)
        whens = [(n.id == i, literal(keys[i], LargeBinary)) for i in ids]
        value: Any = case(*whens, else_=own)
        which: Any = or_(was_planned, n.id.in_(ids))
    else:
        value, which = own, was_planned
    stmt = update(NODES).where(n.job_id == job_id, n.status == NodeStatus.WAITING, which)
    conn.execute(stmt.values(spec=value))
