"""In-memory frontier: the search order *is* ChooseFromArchive.

``bfs`` is FIFO, ``dfs`` LIFO (children pushed so that the first child is expanded first),
``priority`` pops the lowest branch-point loss first (ties by insertion), ``random`` pops a
uniformly random branch with a seeded generator. This is the reference implementation the
durable frontiers are tested against.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Iterable

from ridgerider.core.branch import Branch
from ridgerider.core.settings import ORDERS

__all__ = ["MemoryFrontier"]


class MemoryFrontier:
    """A single-process queue of branches in one of the four search orders."""

    def __init__(self, order: str, seed: int = 0) -> None:
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        self.order = order
        self._fifo: deque[Branch] = deque()
        self._heap: list[tuple[float, int, Branch]] = []
        self._items: list[Branch] = []
        self._rng = random.Random(seed)
        self._counter = 0

    def __len__(self) -> int:
        if self.order == "bfs":
            return len(self._fifo)
        if self.order == "priority":
            return len(self._heap)
        return len(self._items)

    def push(self, branches: Iterable[Branch]) -> None:
        """Add the children of one node, in their exploration order."""
        batch = list(branches)
        if self.order == "bfs":
            self._fifo.extend(batch)
        elif self.order == "dfs":
            self._items.extend(reversed(batch))
        elif self.order == "priority":
            for b in batch:
                key = float("inf") if b.loss is None else b.loss
                heapq.heappush(self._heap, (key, self._counter, b))
                self._counter += 1
        else:
            self._items.extend(batch)

    def pop(self) -> Branch:
        """Remove and return the next branch; ``IndexError`` when empty."""
        if self.order == "bfs":
            return self._fifo.popleft()
        if self.order == "dfs":
            return self._items.pop()
        if self.order == "priority":
            return heapq.heappop(self._heap)[2]
        if not self._items:
            raise IndexError("pop from an empty frontier")
        i = self._rng.randrange(len(self._items))
        self._items[i], self._items[-1] = self._items[-1], self._items[i]
        return self._items.pop()
