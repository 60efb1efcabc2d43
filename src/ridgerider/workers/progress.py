"""Progress of a job run from the CLI: the callbacks, and the nodes read back from the archive.

Workers in this process report each node as they complete it (:class:`Report`); workers
elsewhere (a pool, Ray actors) write to the archive, and :func:`report_nodes` reads what they
sequenced since a rank, in rank order, and the steps of the rides in flight;
:func:`wait_for_pools` does so while running pools ride a job. Everything here reads the
archive's storage alone (no engine, no frontier): a command whose job a warm pool took
(``cli.pooled``) waits here without importing torch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ridgerider.workers.registry import BEAT_S, PoolEntry, find_pools

if TYPE_CHECKING:
    from ridgerider.services.storage.base import Storage
    from ridgerider.workers.worker import OnNode

__all__ = [
    "OnRiding",
    "Report",
    "TreeReport",
    "report_nodes",
    "report_safely",
    "wait_for_pools",
]

log = logging.getLogger(__name__)

OnRiding = Callable[[int], None]
"""Live progress: the steps (a ride's, then a leaf's polish) taken so far by the branches in
flight (not yet in the tree).

In this process it is called at most ten times a second while rides take steps; with Ray
workers, every 0.2 s from what their heartbeats wrote to the archive.
"""


@dataclass
class Report:
    """The progress callbacks of one run, serialised (workers call them from their threads)."""

    on_node: OnNode | None = None
    on_riding: OnRiding | None = None
    every_s: float = 0.1
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _last: float = 0.0

    def node(self, node: Any, steps: int) -> None:
        """A node joined the tree; ``steps``: the tree's ride steps."""
        if self.on_node is not None:
            with self._lock:
                self.on_node(node, steps)

    def riding(self, steps: Callable[[], int], *, force: bool = False) -> None:
        """Report the rides' steps, ``steps()`` (evaluated only when due), every ``every_s``."""
        if self.on_riding is None or (not force and time.monotonic() - self._last < self.every_s):
            return
        with self._lock:
            now = time.monotonic()
            if force or now - self._last >= self.every_s:
                self._last = now
                self.on_riding(steps())


def report_safely(storage: Storage, job_id: int, cursor: int, report: Report) -> int:
    """:func:`report_nodes`, where a lost connection skips one report instead of the job."""
    try:
        return report_nodes(storage, job_id, cursor, report)
    except Exception:
        log.warning("progress of job %s not read this time", job_id, exc_info=True)
        return cursor


def report_nodes(storage: Storage, job_id: int, cursor: int, report: Report) -> int:
    """Report each node sequenced since rank ``cursor`` and the rides in flight; next cursor."""
    if report.on_riding is not None:
        rides = storage.rides
        report.riding(lambda: sum(r.steps for r in rides(job_id)), force=True)
    if report.on_node is None:
        return cursor
    job = storage.get_job(job_id)
    steps = job.steps if job else 0
    while True:
        page = storage.list_nodes(job_id, cursor=cursor, tree=True)
        for record in page.items:
            report.node(record, steps)
            cursor = (record.rank or 0) + 1
        if page.next_cursor is None:
            return cursor


class TreeReport:
    """A job's nodes reported from its tree in rank order, read at most every ``every_s``.

    For workers here that ride ahead of the order: their completions join the tree only when
    the sequencer ranks them (some never: rides past a budget), so completions are not nodes.
    :meth:`due` is called after completions (from any worker thread); :meth:`close` reports
    the rest. Rides in flight are left to the caller (its workers report them live).
    """

    def __init__(
        self, storage: Storage, job_id: int, report: Report, cursor: int, every_s: float = 0.1
    ) -> None:
        self.storage, self.job_id, self.every_s = storage, job_id, every_s
        self.cursor = cursor  # the next rank to report (the tree the job already had)
        self._nodes = Report(on_node=report.on_node)  # report_nodes leaves rides alone then
        self._lock = threading.Lock()
        self._last = 0.0

    def due(self) -> None:
        """Report the nodes ranked since the last read, if ``every_s`` has passed."""
        if time.monotonic() - self._last >= self.every_s:
            self.close()

    def close(self) -> None:
        """Report every node ranked since the last read."""
        with self._lock:
            self._last = time.monotonic()
            self.cursor = report_safely(self.storage, self.job_id, self.cursor, self._nodes)


def wait_for_pools(
    storage: Storage, job_id: int, report: Report, pools: list[PoolEntry], url: str
) -> bool:
    """Wait while running pools ride the job, reporting progress; ``False`` if they all stop.

    Reads the job's status every 50 ms, the progress every 0.2 s, the pools (of ``url``'s
    archive, serving the job's accelerator) every ``BEAT_S``. A job still ``queued`` has not
    ended either: a pool killed between storing a job and starting it leaves it so, and the
    caller then goes on with it (``resume`` starts it).
    """
    job = storage.get_job(job_id)
    accelerator = job.accelerator if job else "cpu"
    cursor = job.nodes if job else 0
    reported = checked = time.monotonic()
    if job is not None and not job.finished and not find_pools(url, accelerator):
        return False
    while job is not None and not job.finished:
        time.sleep(0.05)
        now = time.monotonic()
        if now - reported >= 0.2:
            cursor, reported = report_safely(storage, job_id, cursor, report), now
        if now - checked >= BEAT_S:
            checked = now
            if not find_pools(url, accelerator):
                log.warning("job %s: the worker pools %s stopped", job_id, [p.pid for p in pools])
                return False
        job = storage.get_job(job_id)
    report_nodes(storage, job_id, cursor, report)
    return True
