"""Local worker processes, each running a :class:`~ridgerider.workers.worker.Worker`.

Each process has its own connection to the archive, so the ride's Python work never competes
with the API for the GIL.

Nothing is shared between the processes and the service but a counter per process that only
that process writes (no lock): a process killed at any instant (SIGKILL, the OOM killer) can
hold no lock the service or the others wait on. The service asks a process to stop with
SIGTERM (it stops after the branch in hand); a process also stops when its parent dies (it
checks its parent pid), so a killed service leaves no worker behind. A supervisor thread
replaces a process that died while the pool runs; the dead one's leases are released at once
by the next service start (:func:`ridgerider.services.archive.recover`) or expire.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from ridgerider.core.threads import use_compute_threads
from ridgerider.services.archive import open_archive
from ridgerider.services.frontier.speculation import DEFAULT_SPECULATION
from ridgerider.workers.pools import WorkerPool, lower_priority
from ridgerider.workers.worker import BatchSize, Worker

__all__ = ["ProcessWorkers", "start_process_workers"]

log = logging.getLogger(__name__)
_CTX = mp.get_context("spawn")


@dataclass(frozen=True)
class _Spec:
    """What a worker process needs (passed through the spawn pipe, not the command line)."""

    database_url: str
    redis_url: str | None
    lease_s: float | None
    poll_s: float
    nice: int = 0
    speculation: int = DEFAULT_SPECULATION
    batch: BatchSize = "auto"
    threads: int = 1


def _worker_main(spec: _Spec, completed: Any) -> None:
    """Entry point of a worker process: work until SIGTERM or the parent's death."""
    use_compute_threads(spec.threads)
    lower_priority(spec.nice)  # the one thread that computes; the API's process comes first
    parent = os.getppid()
    archive = open_archive(
        spec.database_url, spec.redis_url, lease_s=spec.lease_s, speculation=spec.speculation
    )
    worker = Worker(
        archive.frontier, job_id=None, batch=spec.batch, stop_when_idle=False, poll_s=spec.poll_s
    )

    def on_node(_node: Any, _steps: int) -> None:
        completed.value += 1  # this process is the only writer

    def on_signal(signum: int, frame: FrameType | None) -> None:
        worker.stop()  # after the branch in hand

    worker.on_node = on_node
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the service, which stops us

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        worker.stop()  # the service died: stop after this branch

    threading.Thread(target=watch, daemon=True).start()
    try:
        worker.run()
    finally:
        archive.close()


@dataclass
class ProcessWorkers(WorkerPool):
    """Worker processes on this machine serving every running job, supervised."""

    spec: _Spec
    n: int
    restart_s: float = 1.0
    processes: list[Any] = field(default_factory=list)
    counters: list[Any] = field(default_factory=list)
    restarts: int = 0
    _stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _supervisor: threading.Thread | None = None

    def start(self) -> ProcessWorkers:
        """Start the ``n`` processes and the supervisor that replaces dead ones."""
        self.processes = [self._spawn(i) for i in range(self.n)]
        self._supervisor = threading.Thread(
            target=self._supervise, name="ridgerider-process-supervisor", daemon=True
        )
        self._supervisor.start()
        return self

    def _spawn(self, i: int) -> Any:
        counter = _CTX.RawValue("q", 0)
        self.counters.append(counter)
        p = _CTX.Process(
            target=_worker_main, args=(self.spec, counter), name=f"ridgerider-worker-{i}"
        )
        p.daemon = True
        p.start()
        return p

    def _supervise(self) -> None:
        while not self._stopping.wait(self.restart_s):
            with self._lock:
                for i, p in enumerate(self.processes):
                    if not p.is_alive() and not self._stopping.is_set():
                        log.warning(
                            "worker process %s exited (%s): replacing it", p.pid, p.exitcode
                        )
                        self.processes[i] = self._spawn(i)
                        self.restarts += 1

    def alive(self) -> int:
        """Processes still running."""
        return sum(p.is_alive() for p in self.processes)

    @property
    def size(self) -> int:
        """Processes started."""
        return len(self.processes)

    @property
    def completed(self) -> int:
        """Nodes completed by these processes (replaced ones included)."""
        return sum(int(c.value) for c in self.counters)

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM every process (it stops after its branch); kill those still busy after it."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
        with self._lock:
            processes = list(self.processes)
        for p in processes:
            if p.is_alive():
                p.terminate()  # SIGTERM: handled, the branch in hand is finished first
        deadline = time.monotonic() + timeout
        for p in processes:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                log.warning("worker process %s still busy after %.0f s: killed", p.pid, timeout)
                p.kill()
                p.join()


def start_process_workers(
    database_url: str,
    redis_url: str | None,
    n: int,
    *,
    lease_s: float | None = None,
    poll_s: float = 0.1,
    nice: int = 0,
    speculation: int = DEFAULT_SPECULATION,
    batch: BatchSize = "auto",
    threads: int = 1,
) -> ProcessWorkers:
    """Start ``n`` supervised worker processes on the archive at ``database_url``.

    ``nice`` lowers their scheduling priority (``pools.lower_priority``); ``speculation``: see
    ``services.archive.open_archive``; ``batch``: branches per claim (``Worker``; ``"auto"``,
    the default, sizes claims from measured times, so a claim's exact branches ride together);
    ``threads``: torch threads per process.
    """
    spec = _Spec(database_url, redis_url, lease_s, poll_s, nice, speculation, batch, threads)
    return ProcessWorkers(spec, n).start()
