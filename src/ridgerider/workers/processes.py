"""Local worker processes, each running a :class:`~ridgerider.workers.worker.Worker`.

Each process has its own
connection to the archive, so the ride's Python work never competes with the API for the GIL.

A process stops after the branch in hand when asked (:meth:`ProcessWorkers.stop`) or when its
parent dies (it checks its parent pid), so a killed service leaves no worker behind; leases of a
dead process are released at once by the next service start
(:func:`ridgerider.services.archive.recover`).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
from dataclasses import dataclass
from typing import Any

from ridgerider.core.threads import use_compute_threads
from ridgerider.services.archive import open_archive
from ridgerider.workers.pools import WorkerPool

__all__ = ["ProcessWorkers", "start_process_workers"]

log = logging.getLogger(__name__)
_CTX = mp.get_context("spawn")


def _worker_main(
    database_url: str,
    redis_url: str | None,
    lease_s: float | None,
    poll_s: float,
    stop: Any,
    completed: Any,
) -> None:
    """Entry point of a worker process."""
    from ridgerider.workers.worker import Worker

    use_compute_threads()
    parent = os.getppid()
    archive = open_archive(database_url, redis_url, lease_s=lease_s)
    worker = Worker(archive.frontier, job_id=None, stop_when_idle=False, poll_s=poll_s)

    def on_node(_node: Any, _steps: int) -> None:
        with completed.get_lock():
            completed.value += 1

    worker.on_node = on_node

    def watch() -> None:
        while not stop.wait(0.5):
            if os.getppid() != parent:  # the service died: stop after this branch
                break
        worker.stop()

    threading.Thread(target=watch, daemon=True).start()
    try:
        worker.run()
    finally:
        archive.close()


@dataclass
class ProcessWorkers(WorkerPool):
    """Worker processes on this machine serving every running job."""

    processes: list[Any]
    stop_event: Any
    counter: Any

    def alive(self) -> int:
        """Processes still running."""
        return sum(p.is_alive() for p in self.processes)

    @property
    def size(self) -> int:
        """Processes started."""
        return len(self.processes)

    @property
    def completed(self) -> int:
        """Nodes completed by these processes."""
        return int(self.counter.value)

    def stop(self, timeout: float = 60.0) -> None:
        """Ask every process to stop after its branch; terminate those still busy after it."""
        self.stop_event.set()
        for p in self.processes:
            p.join(timeout)
            if p.is_alive():
                log.warning("worker process %s still busy after %.0f s: terminated", p.pid, timeout)
                p.terminate()
                p.join()


def start_process_workers(
    database_url: str,
    redis_url: str | None,
    n: int,
    *,
    lease_s: float | None = None,
    poll_s: float = 0.1,
) -> ProcessWorkers:
    """Start ``n`` worker processes on the archive at ``database_url``."""
    stop = _CTX.Event()
    counter = _CTX.Value("q", 0)
    processes = [
        _CTX.Process(
            target=_worker_main,
            args=(database_url, redis_url, lease_s, poll_s, stop, counter),
            name=f"ridgerider-worker-{i}",
            daemon=True,
        )
        for i in range(n)
    ]
    for p in processes:
        p.start()
    return ProcessWorkers(processes, stop, counter)
