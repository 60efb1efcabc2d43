"""What a running app holds (opened by the lifespan).

The archive, the worker pool, the metrics and the job event feeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import cast

import anyio.to_thread
from fastapi import FastAPI, Request

from ridgerider.api.feeds import Feeds
from ridgerider.api.metrics import Metrics
from ridgerider.config import Settings
from ridgerider.services import accounts
from ridgerider.services.archive import Archive, default_database_url, open_archive, recover
from ridgerider.services.storage.records import UserRecord
from ridgerider.services.submission import Limits
from ridgerider.workers.pools import WorkerPool, start_local_workers
from ridgerider.workers.processes import start_process_workers

__all__ = ["PoolFactory", "Service", "get_service", "lifespan"]

PoolFactory = Callable[[Archive, Settings], WorkerPool | None]
"""Starts the workers of a service (``None``: an API-only node)."""


def local_pool(archive: Archive, settings: Settings) -> WorkerPool | None:
    """``settings.workers`` processes, or threads of this process (none for 0)."""
    if settings.workers == 0:
        return None
    if settings.worker_processes:
        url = settings.database_url or default_database_url()
        return start_process_workers(
            url,
            settings.redis_url,
            settings.workers,
            lease_s=settings.lease_s,
            poll_s=settings.worker_poll_s,
            nice=settings.worker_nice,
            speculation=settings.speculation,
        )
    return start_local_workers(archive.frontier, settings.workers, poll_s=settings.worker_poll_s)


@dataclass
class Service:
    """The state the routes use."""

    settings: Settings
    archive: Archive
    pool: WorkerPool | None
    dev_user: UserRecord | None
    metrics: Metrics
    feeds: Feeds
    """One event poller per job, shared by its streams (``/jobs/{id}/events``)."""
    started: float = field(default_factory=time.time)
    submit_slots: asyncio.Semaphore = field(init=False)
    """Bounds the submissions computing at once: each finds an MIS (CPU), and a burst of them
    must not take every thread of the pool that serves the cheap reads."""

    def __post_init__(self) -> None:
        self.submit_slots = asyncio.Semaphore(self.settings.submit_concurrency)

    @property
    def limits(self) -> Limits:
        """What one job may ask for."""
        return Limits(
            self.settings.max_params, self.settings.max_exact_params, self.settings.data_root
        )


async def get_service(request: Request) -> Service:
    """Dependency: the app's :class:`Service` (``async``: no I/O, so no hop to a thread)."""
    return cast(Service, request.app.state.service)


def lifespan(
    settings: Settings, pool_factory: PoolFactory | None, metrics: Metrics
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """Open the archive, recover running jobs, start workers; undo it all on shutdown."""

    @contextlib.asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        # Connections for every thread that may read at once: the route threads, the worker
        # threads of this process, the event pollers' and the reaper's (spares: the overflow).
        threads = settings.api_threads + (0 if settings.worker_processes else settings.workers)
        archive = open_archive(
            settings.database_url,
            settings.redis_url,
            lease_s=settings.lease_s,
            pool_size=threads + 2,
            speculation=settings.speculation,
        )
        try:
            dev = accounts.dev_user(archive.storage) if settings.dev else None
            archive.frontier.start_reaper()
            recover(archive.frontier)
            frontier = archive.frontier  # this process's worker threads claim through it
            frontier.claim = metrics.count_claims(frontier.claim)  # type: ignore[method-assign]
            pool = (pool_factory or local_pool)(archive, settings)
            feeds = Feeds(archive.storage, settings.events_poll_s, settings.events_queue)
            service = Service(settings, archive, pool, dev, metrics, feeds)
            app.state.service = service
            metrics.bind(service)
            try:
                yield
            finally:
                metrics.bind(None)
                await feeds.close()
                if pool is not None:
                    pool.stop(settings.shutdown_timeout_s)
        finally:
            archive.close()

    return run
