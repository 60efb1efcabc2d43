"""The frontier interface: claim branches with a lease, heartbeat, complete or fail them.

One interface, three implementations that pass one contract test suite:
:class:`~.memory.MemoryFrontier` (the reference), :class:`~.database.DatabaseFrontier`
(PostgreSQL ``FOR UPDATE SKIP LOCKED`` or SQLite's single writer) and
:class:`~.redis.RedisFrontier` (claims by a Lua script on sorted sets, the database remains the
source of truth).

* ``claim`` hands out admitted branches in the job's search order (their rank), each with a
  lease that expires unless extended by ``heartbeat``; every claim counts an attempt. With no
  admitted branch left, the database frontier may hand out branches ahead of their turn
  (``Lease.rank is None``; :mod:`.speculation`): their completions join the tree only when the
  sequencer admits them, and are fenced off (``complete`` returns ``False``) once the job ends.
* ``complete`` writes the ridden node, its children (inserted idempotently: unique on job and
  fingerprint, i.e. parent and ridge choice) and the solution of a solution leaf in one
  transaction fenced by the lease token: a worker whose lease expired writes nothing.
* ``fail`` returns a branch to waiting, or dead-letters it after the job's ``max_attempts`` (the
  job then fails: its tree can no longer be the deterministic one).
* ``reap`` returns expired leases; a reaper thread calls it (and ``tick``) continuously.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ridgerider.core.branch import Branch
from ridgerider.core.expand import Expansion
from ridgerider.services.storage.base import Storage
from ridgerider.services.storage.records import RideProgress

__all__ = ["Frontier", "Lease", "default_worker_id", "owner_is_dead_here"]

log = logging.getLogger(__name__)


def default_worker_id() -> str:
    """``host:pid:random`` — unique per worker, and tells a local dead owner apart."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def owner_is_dead_here(owner: str | None) -> bool:
    """Whether a lease owner is a process of this host that no longer exists."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True)
class Lease:
    """A claimed branch: valid until ``expires_at`` (database clock) unless extended."""

    job_id: int
    node_id: int
    token: str
    worker: str
    attempt: int
    expires_at: float
    rank: int | None
    branch: Branch
    branch_ref: str | None = None
    """The artifact the branch was read from (``None``: stored inline); its completion
    drops it (see ``storage.tables.BRANCH_INLINE_LIMIT``)."""


class Frontier(ABC):
    """A durable queue of branches shared by many workers (see the module docstring)."""

    storage: Storage
    lease_s: float | None = None
    """Lease length; ``None`` takes the job's ``lease_s``."""

    def __init__(self) -> None:
        self._reaper: threading.Thread | None = None
        self._stop = threading.Event()

    @abstractmethod
    def claim(
        self,
        worker: str,
        k: int = 1,
        *,
        job_id: int | None = None,
        lease_s: float | None = None,
        accelerator: str = "cpu",
    ) -> list[Lease]:
        """Up to ``k`` admitted branches of running jobs (oldest job first), each leased.

        Only jobs whose ``accelerator`` is the caller's (``cpu`` or ``gpu``) are served.
        """

    @abstractmethod
    def heartbeat(
        self,
        leases: Sequence[Lease],
        lease_s: float | None = None,
        progress: Mapping[int, RideProgress] | None = None,
    ) -> list[bool]:
        """Extend live leases; per lease, whether it is still held (an expired one is lost).

        ``progress`` (by node id) records how far the rides of held leases got, for
        ``Storage.rides``; it is written only where the lease is still held.
        """

    @abstractmethod
    def complete(self, lease: Lease, expansion: Expansion) -> bool:
        """Record the node and its children in one fenced transaction; ``False`` if fenced off."""

    def complete_many(self, done: Sequence[tuple[Lease, Expansion]]) -> list[bool]:
        """Complete several branches, each fenced by its own lease.

        Returns, per branch, whether it was recorded. A database frontier writes them all in
        one transaction (one commit for the lot).
        """
        return [self.complete(lease, expansion) for lease, expansion in done]

    @abstractmethod
    def fail(self, lease: Lease, error: str) -> bool:
        """Give a branch back after an error (dead-letter after ``max_attempts``)."""

    @abstractmethod
    def push(self, job_id: int, parent_id: int, branches: Sequence[Branch]) -> int:
        """Insert children of a node idempotently; returns how many were new.

        ``complete`` does this itself; the method exists for tools and tests.
        """

    @abstractmethod
    def reap(self) -> int:
        """Return every expired lease to waiting (or dead-letter it); how many were expired."""

    @abstractmethod
    def advance(self, job_id: int) -> None:
        """Run the sequencer of a job (after it starts, is extended or resumed)."""

    @abstractmethod
    def tick(self) -> None:
        """Housekeeping the reaper runs: wall-time budgets (and, for Redis, resynchronising)."""

    @abstractmethod
    def release_orphans(self, job_id: int) -> int:
        """Expire now the leases of a job held by processes of this host that have died."""

    def reindex(self, job_id: int) -> None:  # noqa: B027 (optional hook)
        """Make every admitted waiting branch of a job claimable again (after a resume)."""

    # -- reaper thread ---------------------------------------------------------------------

    def start_reaper(self, interval: float = 1.0) -> None:
        """Reap expired leases and tick every ``interval`` seconds in a daemon thread."""
        if self._reaper is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.reap()
                    self.tick()
                except Exception:  # keep reaping whatever happens
                    log.exception("frontier reaper")

        self._reaper = threading.Thread(target=loop, name="ridgerider-reaper", daemon=True)
        self._reaper.start()

    def stop_reaper(self) -> None:
        """Stop the reaper thread (waits for it)."""
        if self._reaper is None:
            return
        self._stop.set()
        self._reaper.join()
        self._reaper = None

    def close(self) -> None:
        """Stop the reaper and release connections."""
        self.stop_reaper()
