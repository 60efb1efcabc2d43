"""What the CLI calls: run a job to completion in this process, resume it, list and show jobs.

Every function opens the archive at ``database_url`` (default: a SQLite file in the user's data
folder, see :func:`default_database_url`), applies pending migrations, does its work and closes
the archive. Results use the JSON shape of ``ridgerider run``, plus ``job_id``.

Three ways to run a job's branches: ``workers`` threads in this process (the default); a
running ``ridgerider worker`` pool of this machine that serves the same archive
(:mod:`ridgerider.workers.registry`; its workers are warm: an idle one looks for work every
0.2 s); or Ray actors (``ray=RayPlan(n, address)``,
:mod:`ridgerider.workers.ray`) on a local Ray started on demand (shut down afterwards) or on the
cluster at ``address``. A ``RayPlan`` without ``address`` uses a running pool when there is one;
if every pool stops before the job ends, it starts its own Ray workers and goes on. Ray workers
are separate processes, so they share the archive, not memory: the embedded default is the
database frontier on the SQLite file (every process opens the same file; SQLite's writer lock
is a file lock), or PostgreSQL (+ Redis) in a deployment. On a cluster, use PostgreSQL (a SQLite
file is only reachable on its own machine).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ridgerider.schemas.enums import JobStatus
from ridgerider.services import accounts, jobs
from ridgerider.services.archive import Archive, open_archive
from ridgerider.services.frontier.speculation import DEFAULT_SPECULATION
from ridgerider.services.jobs import JobNotFoundError
from ridgerider.services.storage.records import RideProgress
from ridgerider.workers.registry import BEAT_S, PoolEntry, find_pools
from ridgerider.workers.worker import OnNode, Worker

if TYPE_CHECKING:
    from ridgerider.workers.ray import WorkerOptions

__all__ = [
    "JobNotFoundError",
    "OnRiding",
    "RayPlan",
    "extend",
    "interrupt",
    "list_jobs",
    "resume",
    "run",
    "show",
]


@contextlib.contextmanager
def _archive(
    database_url: str | None, redis_url: str | None = None, workers: int = 0
) -> Iterator[Archive]:
    """The archive; for one worker in this process no rides ahead (nobody else to ride them)."""
    ahead = 0 if workers == 1 else DEFAULT_SPECULATION
    archive = open_archive(database_url, redis_url, speculation=ahead)
    try:
        yield archive
    finally:
        archive.close()


OnRiding = Callable[[int], None]
"""Live progress: the steps (a ride's, then a leaf's polish) taken so far by the branches in
flight (not yet in the tree).

In this process it is called at most ten times a second while rides take steps; with Ray
workers, every 0.2 s from what their heartbeats wrote to the archive.
"""


log = logging.getLogger(__name__)


@dataclass
class _Report:
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


def _work(archive: Archive, job_id: int, report: _Report, workers: int) -> None:
    """Run ``workers`` workers on one job here until it ends (claims sized automatically)."""
    archive.frontier.start_reaper()

    def on_node(node: Any, steps: int) -> None:
        report.node(node, steps)
        report.riding(lambda: _riding(pool), force=True)

    def on_ride(lease: Any, progress: RideProgress) -> None:
        report.riding(lambda: _riding(pool))

    # One worker here is alone on its job: it claims the cap after riding a claim together.
    kw: dict[str, Any] = {"on_node": on_node, "on_ride": on_ride, "alone": workers == 1}
    pool = [Worker(archive.frontier, job_id, batch="auto", **kw) for _ in range(workers)]
    threads = [threading.Thread(target=w.run, daemon=True) for w in pool[1:]]
    for t in threads:
        t.start()
    try:
        pool[0].run()
    finally:
        for w in pool:
            w.stop()
        for t in threads:
            t.join()


def _riding(pool: list[Worker]) -> int:
    return sum(p.steps for w in pool for p in w.riding().values())


@dataclass(frozen=True)
class RayPlan:
    """Run a job's branches on ``workers`` Ray actors (see the module docstring).

    Args:
        workers: number of Ray worker actors (>= 1).
        address: an existing cluster (``None``: this process's Ray, or a local one on demand).
        options: resources per worker (default: one CPU, one torch thread).
        use_pool: see the attribute.
        on_pool: see the attribute.
    """

    workers: int
    address: str | None = None
    options: WorkerOptions | None = None
    use_pool: bool = True
    """Leave the job to a running ``ridgerider worker`` pool serving the archive, if any
    (:mod:`~ridgerider.workers.registry`); with ``address`` set, always start Ray workers."""
    on_pool: Callable[[list[PoolEntry], int], None] | None = None
    """Told which running pools the job was left to, and how many of their workers serve it."""


def _work_ray(
    archive: Archive, job_id: int, report: _Report, plan: RayPlan, redis_url: str | None
) -> None:
    """Run ``plan.workers`` Ray workers on one job until it finishes, reporting progress."""
    from ridgerider.workers.ray import WorkerPoolError, start_workers

    archive.frontier.start_reaper()
    url = archive.storage.db.url.render_as_string(hide_password=False)
    pool = start_workers(
        url,
        redis_url,
        plan.workers,
        job_id=job_id,
        ray_address=plan.address,
        options=plan.options,
        reaper=False,
    )
    try:
        job = archive.storage.get_job(job_id)
        cursor = job.nodes if job else 0  # report the nodes sequenced from now on
        while not pool.wait(0.2):
            cursor = _report_safely(archive, job_id, cursor, report)
        if pool.error is not None:
            raise WorkerPoolError(pool.error)
        _report(archive, job_id, cursor, report)
    finally:
        pool.stop()


def _work_pool(
    archive: Archive, job_id: int, report: _Report, pools: list[PoolEntry], url: str
) -> bool:
    """Wait while running pools ride the job, reporting progress; ``False`` if they all stop.

    Reads the job's status every 50 ms, the progress every 0.2 s, the pools every ``BEAT_S``.
    """
    archive.frontier.start_reaper()
    job = archive.storage.get_job(job_id)
    accelerator = job.accelerator if job else "cpu"
    cursor = job.nodes if job else 0
    reported = checked = time.monotonic()
    while job is not None and job.status == JobStatus.RUNNING:
        time.sleep(0.05)
        now = time.monotonic()
        if now - reported >= 0.2:
            cursor, reported = _report_safely(archive, job_id, cursor, report), now
        if now - checked >= BEAT_S:
            checked = now
            if not find_pools(url, accelerator):
                log.warning("job %s: the worker pools %s stopped", job_id, [p.pid for p in pools])
                return False
        job = archive.storage.get_job(job_id)
    _report(archive, job_id, cursor, report)
    return True


def _report_safely(archive: Archive, job_id: int, cursor: int, report: _Report) -> int:
    """:func:`_report`, where a lost connection skips one report instead of the job."""
    try:
        return _report(archive, job_id, cursor, report)
    except Exception:
        log.warning("progress of job %s not read this time", job_id, exc_info=True)
        return cursor


def _report(archive: Archive, job_id: int, cursor: int, report: _Report) -> int:
    """Report each node sequenced since rank ``cursor`` and the rides in flight; next cursor."""
    if report.on_riding is not None:
        rides = archive.storage.rides
        report.riding(lambda: sum(r.steps for r in rides(job_id)), force=True)
    if report.on_node is None:
        return cursor
    job = archive.storage.get_job(job_id)
    steps = job.steps if job else 0
    while True:
        page = archive.storage.list_nodes(job_id, cursor=cursor, tree=True)
        for record in page.items:
            report.node(record, steps)
            cursor = (record.rank or 0) + 1
        if page.next_cursor is None:
            return cursor


def _dispatch(
    archive: Archive,
    job_id: int,
    report: _Report,
    workers: int,
    ray: RayPlan | None,
    redis_url: str | None,
) -> None:
    """Run the job's branches to the end.

    If the workers cannot run at all (Ray fails to start, its pool stops), the job ends
    ``failed`` with that reason instead of staying ``running``.
    """
    try:
        if ray is not None and not _left_to_pool(archive, job_id, report, ray):
            _work_ray(archive, job_id, report, ray, redis_url)
        else:
            _work(archive, job_id, report, workers)
    except Exception as exc:
        jobs.fail(archive.storage, job_id, f"workers: {type(exc).__name__}: {exc}")


def _left_to_pool(archive: Archive, job_id: int, report: _Report, ray: RayPlan) -> bool:
    """Whether running pools rode the job to its end (see :attr:`RayPlan.use_pool`)."""
    if not ray.use_pool or ray.address is not None:
        return False
    url = archive.storage.db.url.render_as_string(hide_password=False)
    job = archive.storage.get_job(job_id)
    accelerator = job.accelerator if job else "cpu"
    pools = find_pools(url, accelerator)
    if not pools:
        return False
    if ray.on_pool is not None:
        ray.on_pool(pools, sum(p.workers(accelerator) for p in pools))
    return _work_pool(archive, job_id, report, pools, url)


def run(
    submission: jobs.Submission,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    on_created: Callable[[int, str], None] | None = None,
    on_node: OnNode | None = None,
    on_riding: OnRiding | None = None,
    workers: int = 1,
    ray: RayPlan | None = None,
) -> dict[str, Any]:
    """Create a job, run it to completion in this process and return its result.

    ``on_created(job_id, location)`` is called once the job is stored (print the id and where
    the archive is); ``on_node(node, steps)`` after every node this process completes;
    ``on_riding(steps)`` with the steps of the rides in flight while they run (see
    :data:`OnRiding`).
    The tree equals ``core.run_search``'s for the same seed and settings, with ``workers``
    threads here or with Ray workers (``ray``, see :class:`RayPlan`). A submission without an
    owner belongs to the local user (:data:`accounts.LOCAL_USER`), so the service's dashboard
    lists it for that user, administrators and development mode.
    """
    with _archive(database_url, redis_url, workers) as archive:
        if submission.owner_id is None:
            owner = accounts.local_user(archive.storage).id
            submission = dataclasses.replace(submission, owner_id=owner)
        job = jobs.submit_job(archive.storage, archive.frontier, submission)
        if on_created is not None:
            on_created(job.id, archive.location)
        _dispatch(archive, job.id, _Report(on_node, on_riding), workers, ray, redis_url)
        return jobs.job_result(archive.storage, job.id, submission.problem)


def resume(
    job_id: int,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    on_node: OnNode | None = None,
    on_riding: OnRiding | None = None,
    workers: int = 1,
    ray: RayPlan | None = None,
) -> dict[str, Any]:
    """Continue a job whose process died (or that failed or was cancelled) to completion.

    Raises :class:`JobNotFoundError` for an unknown id. A job that already succeeded is just
    shown.
    """
    with _archive(database_url, redis_url, workers) as archive:
        job = jobs.resume(archive.storage, archive.frontier, job_id)
        if job.status == JobStatus.RUNNING:
            _dispatch(archive, job_id, _Report(on_node, on_riding), workers, ray, redis_url)
        return jobs.job_result(archive.storage, job_id)


def extend(
    job_id: int,
    *,
    max_nodes: int | None = None,
    max_steps: int | None = None,
    wall_time_s: float | None = None,
    database_url: str | None = None,
    redis_url: str | None = None,
    on_node: OnNode | None = None,
    on_riding: OnRiding | None = None,
    workers: int = 1,
    ray: RayPlan | None = None,
) -> dict[str, Any]:
    """Raise a finished job's budgets and run it on to the new ones (``ValueError`` if lower)."""
    with _archive(database_url, redis_url, workers) as archive:
        more = jobs.extend(
            archive.storage,
            archive.frontier,
            job_id,
            max_nodes=max_nodes,
            max_steps=max_steps,
            wall_time_s=wall_time_s,
        )
        if more:
            _dispatch(archive, job_id, _Report(on_node, on_riding), workers, ray, redis_url)
        return jobs.job_result(archive.storage, job_id)


def interrupt(
    job_id: int, *, database_url: str | None = None, redis_url: str | None = None
) -> bool:
    """Mark a job this process was running as interrupted (see :func:`jobs.interrupt`)."""
    with _archive(database_url, redis_url) as archive:
        return jobs.interrupt(archive.storage, job_id)


def list_jobs(
    *,
    database_url: str | None = None,
    status: str | None = None,
    limit: int = 100,
    name: str | None = None,
    tag: str | None = None,
    problem: str | None = None,
) -> list[dict[str, Any]]:
    """Stored jobs, newest first, as ``ridgerider jobs --json`` prints them.

    ``name`` matches any part of the name (any case); ``tag``, ``problem``, ``status`` exactly.
    """
    with _archive(database_url) as archive:
        storage = archive.storage
        page = storage.list_jobs(status=status, limit=limit, name=name, tag=tag, problem=problem)
        counts = storage.count_solutions(j.id for j in page.items)
        return [jobs.job_summary(j, counts[j.id]) for j in page.items]


def show(job_id: int, *, database_url: str | None = None) -> dict[str, Any]:
    """One job with its solutions, exactly as ``run`` returned it (status: see :func:`list_jobs`).

    Raises :class:`JobNotFoundError` for an unknown id.
    """
    with _archive(database_url) as archive:
        return jobs.job_result(archive.storage, job_id)
