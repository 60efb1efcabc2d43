"""The archive: a storage and the frontier over it, opened together, and crash recovery.

``open_archive(database_url, redis_url)`` opens (and migrates) the database and puts a frontier
on it: the database frontier by default, or Redis in front of the database with ``redis_url``.
Every entry point that runs jobs (the CLI, the service, worker processes and Ray actors) opens
its archive here, and its storage through :func:`~ridgerider.services.location.open_storage`,
so there is one way to get from a URL to working storage (listings open only the storage).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ridgerider.schemas.enums import JobStatus
from ridgerider.services import jobs
from ridgerider.services.frontier.base import Frontier
from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.frontier.speculation import DEFAULT_SPECULATION
from ridgerider.services.location import (
    ArchiveUnavailableError,
    default_database_url,
    location_of,
    mask_url,
    open_storage,
)
from ridgerider.services.storage.migrate import current_revision, head_revision, upgrade
from ridgerider.services.storage.sql import SQLStorage

__all__ = [
    "Archive",
    "ArchiveUnavailableError",
    "default_database_url",
    "mask_url",
    "migrate_archive",
    "open_archive",
    "recover",
]


@dataclass
class Archive:
    """An opened storage and the frontier over it."""

    storage: SQLStorage
    frontier: Frontier
    location: str
    """Where the archive lives, safe to print (a file path, or the URL without password)."""

    def close(self) -> None:
        """Stop the reaper and close connections."""
        self.frontier.close()
        self.storage.close()


def open_archive(
    database_url: str | None = None,
    redis_url: str | None = None,
    *,
    lease_s: float | None = None,
    pool_size: int = 5,
    speculation: int = DEFAULT_SPECULATION,
) -> Archive:
    """Open (and migrate) the archive; with ``redis_url`` claims go through Redis.

    ``speculation``: rides a ``dfs``/``priority``/``random`` job may have ahead of its turn
    (``frontier.speculation``; 0: none). The Redis frontier claims admitted branches only.

    ``pool_size``: database connections kept open (PostgreSQL; as many more may open under a
    burst), at least the threads of this process that use the archive at once.
    """
    storage = open_storage(database_url, pool_size=pool_size)
    location = location_of(storage)
    frontier: Frontier
    if redis_url:  # imported only here: redis (and what it loads) cost every command ~0.1 s
        import redis

        from ridgerider.services.frontier.redis import RedisFrontier

        # Archives sharing one Redis keep apart: the key prefix names the database.
        namespace = "rr:" + hashlib.sha256(location.encode()).hexdigest()[:12]
        try:
            client = redis.Redis.from_url(redis_url)
            client.ping()
        except Exception as exc:  # nothing is stored before Redis answers
            storage.close()
            raise ArchiveUnavailableError("redis_url", redis_url, str(exc)) from exc
        frontier = RedisFrontier(storage, client, namespace=namespace, lease_s=lease_s)
    else:
        frontier = DatabaseFrontier(storage, lease_s=lease_s, speculation=speculation)
    return Archive(storage, frontier, location)


def migrate_archive(database_url: str | None = None) -> tuple[str | None, str]:
    """Upgrade the archive's schema to this version's head; ``(revision before, head)``.

    What a deployment's one-off migration step runs (``ridgerider migrate``) before the API and
    the workers start. They would migrate on start too (one at a time, under a lock), so this
    step only makes the upgrade explicit, and its failure visible, before anything serves.
    """
    url = database_url or default_database_url()
    try:
        storage = SQLStorage(url, migrate=False)
    except Exception as exc:  # a bad scheme or driver
        raise ArchiveUnavailableError("database_url", url, str(exc)) from exc
    try:
        before = current_revision(storage.db)
        upgrade(storage.db)
        return before, current_revision(storage.db) or head_revision()
    except Exception as exc:  # a refused connection, a failed migration
        raise ArchiveUnavailableError("database_url", url, str(exc)) from exc
    finally:
        storage.close()


def _job_ids(frontier: Frontier, status: JobStatus) -> list[int]:
    ids: list[int] = []
    cursor: int | None = None
    while True:
        page = frontier.storage.list_jobs(status=status, cursor=cursor, limit=500)
        ids += [job.id for job in page.items]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


def recover(frontier: Frontier) -> list[int]:
    """Make every accepted job run again after a restart; returns the running jobs' ids.

    Queued jobs (stored by a process that died before starting them) are started; running
    jobs get the leases of dead local processes back and their sequencers resumed.
    """
    for job_id in _job_ids(frontier, JobStatus.QUEUED):
        jobs.start(frontier.storage, frontier, job_id)
    ids = _job_ids(frontier, JobStatus.RUNNING)
    for job_id in ids:
        frontier.release_orphans(job_id)
        frontier.advance(job_id)
        frontier.reindex(job_id)
    return ids
