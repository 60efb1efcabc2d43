"""A supervised pool of Ray worker actors: start them, replace the dead, stop them.

Branches are never Ray tasks: each actor runs a :class:`~ridgerider.workers.worker.Worker`
loop that claims branches from the frontier under a lease. Ray's own retries are therefore off
(``max_restarts=0``, ``max_task_retries=0``): a branch whose worker dies comes back when its
lease expires (at once for a dead process of this host), and the supervisor replaces the actor.

The actors never get the archive's URLs as arguments (Ray metadata): the URLs reach them through
a :class:`~ridgerider.workers.ray.handover.Handover` file or their node's settings.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import RayActorError

from ridgerider.schemas.enums import JobStatus
from ridgerider.services.archive import open_archive
from ridgerider.workers.ray.handover import Handover
from ridgerider.workers.ray.host import ProblemStore, WorkerHost, WorkerOptions
from ridgerider.workers.worker import ExpandFn

__all__ = ["WorkerPool", "WorkerPoolError", "ensure_ray", "start_workers"]

log = logging.getLogger(__name__)

LOCAL_OBJECT_STORE = 256 * 2**20
"""Object store of a Ray instance started on demand (problems are small)."""


class WorkerPoolError(RuntimeError):
    """The pool could not keep its workers running (Ray went away, or too many deaths)."""


def ensure_ray(
    address: str | None = None, *, num_cpus: float | None = None, **init_kwargs: Any
) -> bool:
    """Connect to Ray; returns whether this call started a local instance.

    Reuses a Ray already initialised in this process; with ``address`` (``"auto"`` or
    ``"ray://host:10001"`` / ``"host:6379"``) joins that cluster; otherwise starts a local
    instance with ``num_cpus`` logical CPUs, no dashboard and a small object store: a new one
    (``address="local"``), even if ``ray start`` left a cluster on this machine, which
    ``ray.init()`` would join and then refuse ``num_cpus`` for.
    """
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, **init_kwargs)
        return False
    init_kwargs.setdefault("include_dashboard", False)
    init_kwargs.setdefault("object_store_memory", LOCAL_OBJECT_STORE)
    init_kwargs.setdefault("log_to_driver", False)
    ray.init(address="local", num_cpus=num_cpus, **init_kwargs)
    return True


@dataclass
class _Slot:
    actor: Any
    run_ref: Any
    finished: bool = False


@dataclass
class WorkerPool:
    """Ray worker actors serving one job (``job_id``) or every running job, supervised.

    Create it with :func:`start_workers`. A supervisor thread replaces every actor that dies
    (up to ``max_replacements``) and releases the leases its process held.
    """

    database_url: str = field(repr=False)
    redis_url: str | None = field(repr=False)
    n: int
    job_id: int | None = None
    options: WorkerOptions = field(default_factory=WorkerOptions)
    expand_fn: ExpandFn | None = None
    max_replacements: int = 100
    supervise_s: float = 0.5
    started_ray: bool = False
    replaced: int = 0
    error: str | None = None
    _slots: list[_Slot] = field(default_factory=list)
    _store: Any = None
    _stopping: threading.Event = field(default_factory=threading.Event)
    _done: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _archive: Any = None
    _cls: Any = None
    _handover: Handover | None = None

    def _start(self, reaper: bool) -> None:
        self._archive = open_archive(self.database_url, self.redis_url)
        self._handover = Handover(self.database_url, self.redis_url)
        if reaper:
            self._archive.frontier.start_reaper()
        self._store = ray.remote(num_cpus=0, max_restarts=-1)(ProblemStore).remote()
        opts = self.options
        self._cls = ray.remote(
            num_cpus=opts.num_cpus,
            num_gpus=opts.num_gpus,
            max_restarts=0,
            max_task_retries=0,
            max_concurrency=opts.max_concurrency,
        )(WorkerHost)
        self._slots = [self._spawn() for _ in range(self.n)]
        self._thread = threading.Thread(target=self._supervise, name="rr-supervisor", daemon=True)
        self._thread.start()

    def _spawn(self) -> _Slot:
        assert self._handover is not None
        actor = self._cls.remote(
            self._handover.database,  # where to read each URL, never the URL
            self._handover.redis,
            self.job_id,
            self.options,
            self._store,
            self.expand_fn,
        )
        return _Slot(actor, actor.run.remote())

    # -- supervision -----------------------------------------------------------------------

    def _supervise(self) -> None:
        try:
            while not self._stopping.is_set():
                with self._lock:
                    live = {s.run_ref: s for s in self._slots if not s.finished}
                if not live:
                    break
                if not ray.is_initialized():  # never let Ray's auto-init start a new one
                    raise WorkerPoolError("Ray was shut down")
                ready, _ = ray.wait(list(live), num_returns=1, timeout=self.supervise_s)
                for ref in ready:
                    self._settle(live[ref], ref)
        except BaseException as exc:  # Ray itself went away
            if not self._stopping.is_set():
                self.error = f"{type(exc).__name__}: {exc}"
                log.error("worker pool stopped: %s", self.error)
        finally:
            self._done.set()

    def _settle(self, slot: _Slot, ref: Any) -> None:
        """A worker's loop returned: done, or dead (replace it)."""
        try:
            ray.get(ref)
            slot.finished = True
            return
        except RayActorError as exc:
            why = f"worker died: {exc}"
        except Exception as exc:  # the worker loop raised: its actor lives on, idle
            why = f"worker failed: {type(exc).__name__}: {exc}"
            with contextlib.suppress(Exception):
                ray.kill(slot.actor, no_restart=True)  # free its resources for the replacement
        slot.finished = True
        if self._stopping.is_set():
            return
        log.warning("%s", why)
        self._release_orphans()
        if self.replaced >= self.max_replacements:
            raise WorkerPoolError(f"{self.replaced} workers replaced; last: {why}")
        with self._lock:
            self._slots.append(self._spawn())
            self.replaced += 1

    def _release_orphans(self) -> None:
        """Free at once the leases held by dead worker processes of this host."""
        storage, frontier = self._archive.storage, self._archive.frontier
        jobs = (
            [self.job_id]
            if self.job_id is not None
            else [j.id for j in storage.list_jobs(status=JobStatus.RUNNING, limit=1000).items]
        )
        for job_id in jobs:
            frontier.release_orphans(job_id)

    # -- public API ------------------------------------------------------------------------

    def alive(self) -> int:
        """How many workers are running now (not finished, not dead)."""
        with self._lock:
            return sum(not s.finished for s in self._slots)

    def actors(self) -> list[Any]:
        """Handles of the running actors (``ray.get(actor.info.remote())`` describes one)."""
        with self._lock:
            return [s.actor for s in self._slots if not s.finished]

    def info(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """``WorkerHost.info`` (pid, worker id, completed, holding) of the actors that answer.

        Actors still starting, or dead, are left out.
        """
        refs = [a.info.remote() for a in self.actors()]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        out = []
        for ref in ready:
            with contextlib.suppress(RayActorError):
                out.append(ray.get(ref))
        return out

    def problems_built(self, timeout: float = 10.0) -> int:
        """How many problem objects the pool's store built (once per job, not per worker)."""
        return int(ray.get(self._store.stats.remote(), timeout=timeout)["built"])

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every worker finished (its job ended) or the pool failed; whether so."""
        return self._done.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every worker after the branch in hand, then release Ray and the archive.

        A local Ray instance that :func:`start_workers` started is shut down.
        """
        self._stopping.set()
        if ray.is_initialized():
            actors = [s.actor for s in self._slots]
            with contextlib.suppress(Exception):  # actors already gone
                ray.get([a.stop.remote() for a in actors], timeout=timeout)
            with contextlib.suppress(Exception):  # actors already gone
                ray.wait([s.run_ref for s in self._slots], num_returns=len(self._slots),
                         timeout=timeout)  # fmt: skip
            for actor in [*actors, self._store]:
                with contextlib.suppress(Exception):  # actors already gone
                    ray.kill(actor, no_restart=True)
        if self._thread is not None:
            self._thread.join(timeout)
        if self._archive is not None:
            self._archive.close()
            self._archive = None
        if self._handover is not None:
            self._handover.close()
        if self.started_ray and ray.is_initialized():
            ray.shutdown()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_workers(
    database_url: str,
    redis_url: str | None = None,
    n: int = 1,
    *,
    job_id: int | None = None,
    ray_address: str | None = None,
    options: WorkerOptions | None = None,
    reaper: bool = True,
    max_replacements: int = 100,
    expand_fn: ExpandFn | None = None,
) -> WorkerPool:
    """Start ``n`` Ray worker actors on the archive at ``database_url`` and return the pool.

    Args:
        database_url: PostgreSQL URL, or a SQLite file on a disk every worker can open (a
            local Ray). The in-memory frontier cannot be shared across processes.
        redis_url: claims go through this Redis frontier (as ``open_archive`` sets it up).
        n: number of worker actors (>= 1).
        job_id: serve only this job (the actors finish with it); ``None``: every running job,
            until :meth:`WorkerPool.stop`.
        ray_address: join this cluster (``"auto"``, ``"host:6379"``, ``"ray://host:10001"``);
            ``None`` reuses the Ray of this process or starts a local one (shut down by
            ``stop``) with at least ``n * num_cpus`` logical CPUs.
        options: resources per worker (:class:`WorkerOptions`).
        reaper: also run the frontier's reaper (expired leases, wall-time budgets) here.
        max_replacements: dead workers replaced before the pool gives up (``.error``).
        expand_fn: a simulated expand step (benchmarks only).

    Use ``pool.alive()`` (running workers), ``pool.wait(timeout)`` (all finished),
    ``pool.error`` (why it gave up, or ``None``) and ``pool.stop()``.
    """
    if n < 1:
        raise ValueError(f"n: at least one worker, got {n}")
    opts = options or WorkerOptions()
    cpus = max(float(os.cpu_count() or 1), n * opts.num_cpus)
    started = ensure_ray(ray_address, num_cpus=cpus)
    pool = WorkerPool(
        database_url,
        redis_url,
        n,
        job_id=job_id,
        options=opts,
        expand_fn=expand_fn,
        max_replacements=max_replacements,
        started_ray=started,
    )
    try:
        pool._start(reaper)
    except BaseException:
        pool.stop()
        raise
    return pool
