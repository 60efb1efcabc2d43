"""What the CLI calls: run a job to completion in this process, resume, extend and show it.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ridgerider.core.settings import RRSettings
from ridgerider.schemas.enums import JobStatus
from ridgerider.services import accounts, jobs
from ridgerider.services.archive import Archive, open_archive
from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.frontier.speculation import DEFAULT_SPECULATION
from ridgerider.services.jobs import JobNotFoundError
from ridgerider.services.storage.records import JobRecord, RideProgress
from ridgerider.workers.progress import (
    OnRiding,
    Report,
    TreeReport,
    report_nodes,
    report_safely,
    wait_for_pools,
)
from ridgerider.workers.registry import PoolEntry, find_pools
from ridgerider.workers.worker import OnNode, Worker

if TYPE_CHECKING:
    from ridgerider.workers.ray import WorkerOptions

__all__ = [
    "JobNotFoundError",
    "OnRiding",
    "RayPlan",
    "extend",
    "interrupt",
    "resume",
    "run",
    "show",
]


@contextlib.contextmanager
def _archive(database_url: str | None, redis_url: str | None = None) -> Iterator[Archive]:
    """The archive (its frontier rides ahead up to ``DEFAULT_SPECULATION``)."""
    archive = open_archive(database_url, redis_url, speculation=DEFAULT_SPECULATION)
    try:
        yield archive
    finally:
        archive.close()


log = logging.getLogger(__name__)


def _work(archive: Archive, job_id: int, report: Report, workers: int) -> None:
    """Run ``workers`` workers on one job here until it ends (claims sized automatically)."""
    archive.frontier.start_reaper()
    job = archive.storage.get_job(job_id)
    tree: TreeReport | None = None
    if job is not None and _speculate(archive, job, workers):
        tree = TreeReport(archive.storage, job_id, report, job.nodes)

    def on_node(node: Any, steps: int) -> None:
        if tree is None:
            report.node(node, steps)
        else:  # a completion ahead of its turn is not a node (yet)
            tree.due()
        report.riding(lambda: _riding(pool), force=True)

    def on_ride(lease: Any, progress: RideProgress) -> None:
        report.riding(lambda: _riding(pool))

    # One worker here is alone on its job: it claims the cap after riding a claim together.
    pool = [
        Worker(
            archive.frontier,
            job_id,
            batch="auto",
            on_node=on_node,
            on_ride=on_ride,
            alone=workers == 1,
        )
        for _ in range(workers)
    ]
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
    if tree is not None:
        tree.close()


def _speculate(archive: Archive, job: JobRecord, workers: int) -> bool:
    """Set how far workers here ride ahead of the job's order; whether they ride ahead at all.

    One worker here rides ahead only where it rides its claims together: a ride ahead pays a
    lone worker by riding in one batch with the rank it claims (``dfs``, ``priority`` on
    tree-rl depth 10: the job 1.45-1.7x faster); ridden one by one it would only risk waste.
    Several ride ahead up to the archive's cap. A ``bfs`` job is never ridden ahead.
    """
    frontier = archive.frontier
    if not isinstance(frontier, DatabaseFrontier):
        return False
    if workers == 1:
        together = RRSettings.from_dict(job.settings).rides_together()
        frontier.speculation = DEFAULT_SPECULATION if together else 0
    return frontier.speculation > 0 and job.settings.get("order") != "bfs"


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
    archive: Archive, job_id: int, report: Report, plan: RayPlan, redis_url: str | None
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
            cursor = report_safely(archive.storage, job_id, cursor, report)
        if pool.error is not None:
            raise WorkerPoolError(pool.error)
        report_nodes(archive.storage, job_id, cursor, report)
    finally:
        pool.stop()


def _work_pool(
    archive: Archive, job_id: int, report: Report, pools: list[PoolEntry], url: str
) -> bool:
    """Wait while running pools ride the job (:func:`wait_for_pools`), the reaper running here."""
    archive.frontier.start_reaper()
    return wait_for_pools(archive.storage, job_id, report, pools, url)


def _dispatch(
    archive: Archive,
    job_id: int,
    report: Report,
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


def _pools(archive: Archive, accelerator: str, ray: RayPlan | None) -> list[PoolEntry]:
    """The running pools ``ray`` leaves a job of ``accelerator`` to (:attr:`RayPlan.use_pool`)."""
    if ray is None or not ray.use_pool or ray.address is not None:
        return []
    return find_pools(archive.storage.db.url.render_as_string(hide_password=False), accelerator)


def _left_to_pool(archive: Archive, job_id: int, report: Report, ray: RayPlan) -> bool:
    """Whether running pools rode the job to its end (see :attr:`RayPlan.use_pool`)."""
    job = archive.storage.get_job(job_id)
    accelerator = job.accelerator if job else "cpu"
    pools = _pools(archive, accelerator, ray)
    if not pools:
        return False
    url = archive.storage.db.url.render_as_string(hide_password=False)
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
    lists it for that user, administrators and development mode. A job left to a running pool
    is stored before its MIS is found (``jobs.submit_job(defer_mis=True)``): the pool's warm
    worker finds it (the same MIS, the same tree) and this process computes no Hessian.
    """
    with _archive(database_url, redis_url) as archive:
        if submission.owner_id is None:
            owner = accounts.local_user(archive.storage).id
            submission = dataclasses.replace(submission, owner_id=owner)
        defer = submission.mis_settings is None and bool(
            _pools(archive, submission.accelerator, ray)
        )
        job = jobs.submit_job(archive.storage, archive.frontier, submission, defer_mis=defer)
        if on_created is not None:
            on_created(job.id, archive.location)
        _dispatch(archive, job.id, Report(on_node, on_riding), workers, ray, redis_url)
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
    with _archive(database_url, redis_url) as archive:
        job = jobs.resume(archive.storage, archive.frontier, job_id)
        if job.status == JobStatus.RUNNING:
            _dispatch(archive, job_id, Report(on_node, on_riding), workers, ray, redis_url)
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
    with _archive(database_url, redis_url) as archive:
        more = jobs.extend(
            archive.storage,
            archive.frontier,
            job_id,
            max_nodes=max_nodes,
            max_steps=max_steps,
            wall_time_s=wall_time_s,
        )
        if more:
            _dispatch(archive, job_id, Report(on_node, on_riding), workers, ray, redis_url)
        return jobs.job_result(archive.storage, job_id)


def interrupt(
    job_id: int, *, database_url: str | None = None, redis_url: str | None = None
) -> bool:
    """Mark a job this process was running as interrupted (see :func:`jobs.interrupt`)."""
    with _archive(database_url, redis_url) as archive:
        return jobs.interrupt(archive.storage, job_id)


def show(job_id: int, *, database_url: str | None = None) -> dict[str, Any]:
    """One job with its solutions, exactly as ``run`` returned it.

    Raises :class:`JobNotFoundError` for an unknown id.
    """
    with _archive(database_url) as archive:
        return jobs.job_result(archive.storage, job_id)
