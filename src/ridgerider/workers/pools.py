"""What a long-running service needs: recover running jobs on start, run local worker threads.

``ridgerider serve`` opens the archive (:func:`ridgerider.services.archive.open_archive`), calls
:func:`~ridgerider.services.archive.recover` (leases of a previous process of this host that
died are released at once, the sequencers resume), then :func:`start_local_workers`. Shutting
down stops the workers after the branch each holds, so every lease is either completed or
released; nothing accepted is lost.
"""

from __future__ import annotations

import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ridgerider.services.frontier.base import Frontier
from ridgerider.workers.worker import BatchSize, Worker

__all__ = [
    "LocalWorkers",
    "RemoteWorkers",
    "WorkerPool",
    "lower_priority",
    "start_local_workers",
    "start_ray_workers",
]

log = logging.getLogger(__name__)


class WorkerPool(ABC):
    """What the service needs of a set of workers, local threads or remote (e.g. Ray)."""

    @abstractmethod
    def alive(self) -> int:
        """Workers running now."""

    @property
    @abstractmethod
    def size(self) -> int:
        """Workers started."""

    @property
    @abstractmethod
    def completed(self) -> int:
        """Nodes completed by these workers so far."""

    @abstractmethod
    def stop(self, timeout: float = 60.0) -> None:
        """Stop after the branches in hand (waits up to ``timeout`` seconds)."""


@dataclass
class LocalWorkers(WorkerPool):
    """Worker threads in this process serving every running job, each slot supervised.

    A worker whose loop ends with an unexpected error (its lease expires and the branch is
    ridden again) is replaced by a fresh one in the same thread after ``restart_s``; only
    :meth:`stop` ends a slot.
    """

    make_worker: Callable[[], Worker]
    n: int
    restart_s: float = 1.0
    workers: list[Worker] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    restarts: int = 0
    _retired: int = 0
    _stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> LocalWorkers:
        """Start the ``n`` supervised threads."""
        self.workers = [self.make_worker() for _ in range(self.n)]
        self.threads = [
            threading.Thread(target=self._slot, args=(i,), name=f"ridgerider-worker-{i}")
            for i in range(self.n)
        ]
        for t in self.threads:
            t.daemon = True
            t.start()
        return self

    def _slot(self, i: int) -> None:
        while True:
            worker = self.workers[i]
            try:
                worker.run()
            except Exception:
                log.exception("worker %s stopped: replacing it", worker.worker_id)
            if self._stopping.wait(self.restart_s):
                return
            with self._lock:
                self._retired += worker.completed
                self.restarts += 1
                self.workers[i] = self.make_worker()

    def alive(self) -> int:
        """Threads still running."""
        return sum(t.is_alive() for t in self.threads)

    @property
    def size(self) -> int:
        """Threads started."""
        return len(self.threads)

    @property
    def completed(self) -> int:
        """Nodes completed by these threads (replaced workers included)."""
        with self._lock:
            return self._retired + sum(w.completed for w in self.workers)

    def stop(self, timeout: float = 60.0) -> None:
        """Ask every worker to stop after its branch, and wait for them."""
        self._stopping.set()
        with self._lock:
            workers = list(self.workers)
        for w in workers:
            w.stop()
        for t in self.threads:
            t.join(timeout)
            if t.is_alive():  # its lease expires by itself (or on restart: a dead owner)
                log.warning("worker %s still busy after %.0f s", t.name, timeout)


def lower_priority(nice: int) -> None:
    """Lower the calling thread's scheduling priority by ``nice`` (Linux: this thread only).

    The service's worker processes ride beside the API on the same cores; at a higher niceness
    the kernel runs the API first, so reads stay fast while the workers use what is left. Worker
    threads of the API's own process are not lowered: they share its GIL, and a low-priority
    thread holding it would hold up the API. Where it is not allowed or supported, the worker
    runs at the normal priority.
    """
    if nice <= 0:
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    except (AttributeError, OSError) as exc:  # pragma: no cover - not Linux, or refused
        log.info("worker priority unchanged: %s", exc)


def start_local_workers(
    frontier: Frontier, n: int, *, poll_s: float = 0.1, batch: BatchSize = "auto"
) -> LocalWorkers:
    """Start ``n`` worker threads on every running job (they idle, polling, when none has work).

    ``batch``: branches per claim (``"auto"``: sized from measured times, so a claim's exact
    branches of one job ride together; claims of one rode lever-game 2.2-2.5x slower).
    """
    frontier.start_reaper()

    def make() -> Worker:
        return Worker(frontier, job_id=None, stop_when_idle=False, poll_s=poll_s, batch=batch)

    return LocalWorkers(make, n).start()


@dataclass
class RemoteWorkers(WorkerPool):
    """Adapter for a pool of workers in other processes (e.g. Ray actors).

    ``pool`` needs ``alive() -> int`` and ``stop(timeout)``; completions are counted by those
    processes, not here.
    """

    pool: Any
    n: int

    def alive(self) -> int:
        """Workers the remote pool reports running."""
        return int(self.pool.alive())

    @property
    def size(self) -> int:
        """Workers asked for."""
        return self.n

    @property
    def completed(self) -> int:
        """Not known in this process (each remote worker counts its own)."""
        return 0

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the remote workers after their branches in hand."""
        self.pool.stop(timeout)


def start_ray_workers(
    database_url: str, redis_url: str | None, n: int, address: str
) -> RemoteWorkers:
    """``n`` workers as Ray actors on the cluster at ``address`` serving every running job.

    ``address="local"`` starts a private local Ray, shut down with the pool. Raises
    ``RuntimeError`` when Ray workers (``ridgerider.workers.ray``) are not available
    in this installation.
    """
    try:
        from ridgerider.workers.ray import start_workers
    except ImportError as exc:
        raise RuntimeError(f"Ray workers are not available: {exc}") from None
    pool = start_workers(
        database_url,
        redis_url,
        n,
        ray_address=None if address == "local" else address,
        reaper=False,  # the service runs the reaper
    )
    return RemoteWorkers(pool, n)
