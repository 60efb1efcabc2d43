"""What a long-running service needs: recover running jobs on start, run local worker threads.

``ridgerider serve`` opens the archive (:func:`ridgerider.services.archive.open_archive`), calls
:func:`~ridgerider.services.archive.recover` (leases of a previous process of this host that
died are released at once, the sequencers resume), then :func:`start_local_workers`. Shutting
down stops the workers after the branch each holds, so every lease is either completed or
released; nothing accepted is lost.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from ridgerider.services.frontier.base import Frontier
from ridgerider.workers.worker import Worker

__all__ = [
    "LocalWorkers",
    "RemoteWorkers",
    "WorkerPool",
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
    """Worker threads in this process serving every running job."""

    workers: list[Worker]
    threads: list[threading.Thread] = field(default_factory=list)

    def alive(self) -> int:
        """Threads still running."""
        return sum(t.is_alive() for t in self.threads)

    @property
    def size(self) -> int:
        """Threads started."""
        return len(self.threads)

    @property
    def completed(self) -> int:
        """Nodes completed by these threads."""
        return sum(w.completed for w in self.workers)

    def stop(self, timeout: float = 60.0) -> None:
        """Ask every worker to stop after its branch, and wait for them."""
        for w in self.workers:
            w.stop()
        for t in self.threads:
            t.join(timeout)
            if t.is_alive():  # its lease expires by itself (or on restart: a dead owner)
                log.warning("worker %s still busy after %.0f s", t.name, timeout)


def _guarded(worker: Worker) -> None:
    """Run a worker; an unexpected error is logged (the lease expires and another retries)."""
    try:
        worker.run()
    except Exception:
        log.exception("worker %s stopped", worker.worker_id)


def start_local_workers(frontier: Frontier, n: int, *, poll_s: float = 0.1) -> LocalWorkers:
    """Start ``n`` worker threads on every running job (they idle, polling, when none has work)."""
    frontier.start_reaper()
    workers = [Worker(frontier, job_id=None, stop_when_idle=False, poll_s=poll_s) for _ in range(n)]
    threads = [
        threading.Thread(target=_guarded, args=(w,), name=f"ridgerider-worker-{i}", daemon=True)
        for i, w in enumerate(workers)
    ]
    for t in threads:
        t.start()
    return LocalWorkers(workers, threads)


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
