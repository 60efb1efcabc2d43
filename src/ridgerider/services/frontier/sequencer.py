"""The sequencer: makes the single-worker expansion order durable, so budgets are deterministic.

Every branch gets a **rank**: its position in the order in which ``core.run_search`` (one
worker, ``core.MemoryFrontier``) would expand it. A branch may be claimed only once its rank is
*admitted*, i.e. known to lie inside the budgets. So the tree of a job is always the same prefix
of the same order: ranks ``0 .. admitted-1``, whatever the number of workers, their speed,
crashes, restarts or Redis losses. The sequencer replays ``run_search`` on the durable rows:

* **push**: when every rank below ``p`` is done and so is rank ``p`` (``prefix`` passes ``p``),
  ``p``'s children enter the virtual frontier in ``run_search``'s push order (``seq``); for
  ``random`` they are appended to the virtual list (``slot``).
* **pop** (assign the next rank): ``bfs`` pops in push order, so a child's rank is its ``seq``
  and is known at push time; ``dfs``, ``priority`` and ``random`` pop only when every ranked
  node is done (as the sequential loop does), taking the largest ``seq`` (children are pushed in
  reverse), the lowest (branch loss, ``seq``), or the slot drawn by the job's stored
  ``random.Random`` state (swap with the last slot, as ``MemoryFrontier`` does).
* **admit**: rank ``a`` is admitted when ``a < max_nodes`` and either ``a == 0`` or the steps of
  ranks ``< a`` are below ``max_steps`` — exactly when they are all known (``prefix == a``),
  or early when even ``max_ride_steps`` per unfinished rank cannot reach the budget. The first
  rank that fails stops the job (``stopped_by``), as ``run_search``'s checks do.

Consequences (what we guarantee): for every order the tree equals ``run_search``'s for the same
seed and budgets; ``bfs`` runs ranks in parallel (a whole level is admitted at once), while
``dfs``, ``priority`` and ``random`` admit the next rank only when the previous one finishes
(their next choice depends on it). Workers still ride their branches ahead of time
(:mod:`.speculation`): a rank found done when it is ranked is passed at once, so a chain of
rides done ahead joins the tree in one sequencer round. A wall-time stop is
the one non-deterministic budget: ranks not started are dropped and the tree ends at the first.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["RankRow", "SeqState", "SeqStore", "advance", "stop"]

BATCH = 512
"""How many ranks the prefix scan reads at once."""


@dataclass
class SeqState:
    """A job's sequencer counters (columns of the job row) and its budgets."""

    order: str
    seed: int
    pushed: int
    ranked: int
    prefix: int
    prefix_steps: int
    admitted: int
    stopped_by: str | None
    rng_state: list[Any] | None
    """JSON form of the ``random`` order's ``random.Random`` state (``None``: not drawn yet)."""
    max_nodes: int
    max_steps: int
    max_ride_steps: int

    @property
    def finished(self) -> bool:
        """Stopped (budget or exhaustion) and every admitted rank done."""
        return self.stopped_by is not None and self.prefix >= self.admitted


@dataclass(frozen=True)
class RankRow:
    """What the prefix scan needs of a done, ranked row."""

    rank: int
    node_id: int
    steps: int


class SeqStore(Protocol):
    """The rows of one job, as the sequencer reads and writes them (inside one transaction)."""

    def root_id(self) -> int:
        """The root branch's row id."""
        ...

    def done_from(self, start: int, stop: int) -> list[RankRow]:
        """Done rows with ``start <= rank < stop``, by rank."""
        ...

    def children(self, parent_id: int) -> list[int]:
        """Row ids of a parent's children, in its child order."""
        ...

    def push_bfs(self, start: int, stop: int, first: int) -> int:
        """Rank the children of the parents ranked ``start .. stop-1`` in FIFO order.

        The children get ``seq = rank = first, first + 1, ...`` ordered by (parent rank, child
        index), in one set-based statement; returns how many there were.
        """
        ...

    def set_order(self, rows: Sequence[tuple[int, int, int | None, int | None]]) -> None:
        """Set ``(id, seq, rank, slot)`` of freshly pushed rows."""
        ...

    def pick(self, order: str) -> int:
        """The next pop of an unranked pushed row: ``dfs`` max seq, ``priority`` min (loss, seq)."""
        ...

    def at_slot(self, slot: int) -> int:
        """The row at a slot of the ``random`` list."""
        ...

    def set_rank(self, node_id: int, rank: int) -> None:
        """Rank a row (and take it out of the random list)."""
        ...

    def move_slot(self, node_id: int, slot: int) -> None:
        """Move a row to another slot of the random list."""
        ...


def advance(st: SeqState, store: SeqStore) -> bool:
    """Push, rank and admit as far as the done rows allow; ``True`` if anything changed."""
    changed = False
    if st.pushed == 0:
        _push(st, store, [store.root_id()])
        changed = True
    blocked = -1  # the prefix rank last found not done (no need to look again)
    while True:
        progress = _admit(st)
        if st.prefix != blocked and st.prefix < st.admitted:
            moved, stuck = _advance_prefix(st, store)
            progress |= moved
            if stuck:
                blocked = st.prefix
        if st.order != "bfs" and st.prefix == st.ranked and st.pushed > st.ranked:
            _pop(st, store)
            progress = True
        if st.stopped_by is None and st.prefix == st.admitted == st.ranked == st.pushed:
            st.stopped_by = "exhausted"
            progress = True
        if not progress:
            return changed
        changed = True


def stop(st: SeqState, reason: str, first_unstarted: int | None) -> None:
    """Stop admitting (wall time, cancellation): ranks from ``first_unstarted`` on are dropped."""
    st.stopped_by = reason
    if first_unstarted is not None:
        st.admitted = max(st.prefix, min(st.admitted, first_unstarted))


def _admit(st: SeqState) -> bool:
    start, stopped = st.admitted, st.stopped_by
    while st.stopped_by is None and st.admitted < st.ranked:
        a = st.admitted
        if a >= st.max_nodes:
            st.stopped_by = "max_nodes"
        elif a > 0 and st.prefix == a and st.prefix_steps >= st.max_steps:
            st.stopped_by = "max_steps"
        elif a > 0 and st.prefix_steps + (a - st.prefix) * st.max_ride_steps >= st.max_steps:
            break  # the steps of unfinished ranks decide; wait for them
        else:
            st.admitted += 1
    return st.admitted != start or st.stopped_by != stopped


def _advance_prefix(st: SeqState, store: SeqStore) -> tuple[bool, bool]:
    """Move the prefix over done ranks: (whether it moved, whether it is now known stuck)."""
    moved = False
    while st.prefix < st.admitted:
        start, stop = st.prefix, min(st.admitted, st.prefix + BATCH)
        run = 0
        for row in store.done_from(start, stop):
            if row.rank != start + run:
                break  # the rank the prefix waits for is not done
            run += 1
            st.prefix_steps += row.steps
            if st.order != "bfs":
                _push(st, store, store.children(row.node_id))
                st.prefix += 1
                return True, False  # the next pop must come before the next push
        if run:
            # BFS: the whole run's children, in one statement.
            st.pushed += store.push_bfs(start, start + run, st.pushed)
            st.ranked = st.pushed
            st.prefix += run
            moved = True
        if st.prefix < stop:
            return moved, True
    return moved, False


def _push(st: SeqState, store: SeqStore, ids: list[int]) -> None:
    n = len(ids)
    rows: list[tuple[int, int, int | None, int | None]] = []
    for i, node_id in enumerate(ids):
        if st.order == "bfs":
            rows.append((node_id, st.pushed + i, st.pushed + i, None))
        elif st.order == "dfs":
            rows.append((node_id, st.pushed + n - 1 - i, None, None))
        elif st.order == "random":
            rows.append((node_id, st.pushed + i, None, st.pushed - st.ranked + i))
        else:
            rows.append((node_id, st.pushed + i, None, None))
    if rows:
        store.set_order(rows)
    st.pushed += n
    if st.order == "bfs":
        st.ranked = st.pushed


def _pop(st: SeqState, store: SeqStore) -> None:
    if st.order == "random":
        rng = random.Random(st.seed)  # as MemoryFrontier(order, seed)
        if st.rng_state is not None:
            version, internal, gauss = st.rng_state
            rng.setstate((version, tuple(internal), gauss))
        size = st.pushed - st.ranked
        i = rng.randrange(size)
        chosen, last = store.at_slot(i), store.at_slot(size - 1)
        store.set_rank(chosen, st.ranked)
        if last != chosen:
            store.move_slot(last, i)
        version, internal, gauss = rng.getstate()
        st.rng_state = [version, list(internal), gauss]
    else:
        store.set_rank(store.pick(st.order), st.ranked)
    st.ranked += 1
