"""What a running app holds: the archive, the worker pool, metrics; opened by the lifespan."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import cast

from fastapi import FastAPI, Request

from ridgerider.api.metrics import Metrics
from ridgerider.api.settings import ApiSettings
from ridgerider.services import accounts
from ridgerider.services.runner import Archive, open_archive
from ridgerider.services.serving import WorkerPool, recover, start_local_workers
from ridgerider.services.storage.records import UserRecord
from ridgerider.services.submission import Limits

__all__ = ["PoolFactory", "Service", "get_service", "lifespan"]

PoolFactory = Callable[[Archive, ApiSettings], WorkerPool | None]
"""Starts the workers of a service (``None``: an API-only node)."""


def local_pool(archive: Archive, settings: ApiSettings) -> WorkerPool | None:
    """``settings.workers`` threads in this process (none for 0)."""
    if settings.workers == 0:
        return None
    return start_local_workers(archive.frontier, settings.workers, poll_s=settings.worker_poll_s)


@dataclass
class Service:
    """The state the routes use."""

    settings: ApiSettings
    archive: Archive
    pool: WorkerPool | None
    dev_user: UserRecord | None
    metrics: Metrics
    started: float = field(default_factory=time.time)

    @property
    def limits(self) -> Limits:
        """What one job may ask for."""
        return Limits(self.settings.max_params, self.settings.max_exact_params)


def get_service(request: Request) -> Service:
    """Dependency: the app's :class:`Service`."""
    return cast(Service, request.app.state.service)


def lifespan(
    settings: ApiSettings, pool_factory: PoolFactory | None, metrics: Metrics
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """Open the archive, recover running jobs, start workers; undo it all on shutdown."""

    @contextlib.asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        archive = open_archive(settings.database_url, settings.redis_url, lease_s=settings.lease_s)
        try:
            dev = accounts.dev_user(archive.storage) if settings.dev else None
            archive.frontier.start_reaper()
            recover(archive.frontier)
            pool = (pool_factory or local_pool)(archive, settings)
            app.state.service = Service(settings, archive, pool, dev, metrics)
            try:
                yield
            finally:
                if pool is not None:
                    pool.stop(settings.shutdown_timeout_s)
        finally:
            archive.close()

    return run
