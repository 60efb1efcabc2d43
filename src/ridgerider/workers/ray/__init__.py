"""Ray workers: the plain :class:`~ridgerider.workers.worker.Worker` in Ray actors.

``start_workers(database_url, redis_url, n, job_id=None, ray_address=None, options=...)``
returns a supervised :class:`WorkerPool` (``.alive()``, ``.wait()``, ``.error``, ``.stop()``).
A service serving every job of its archive::

    from ridgerider.workers.ray import WorkerOptions, start_workers

    pool = start_workers(database_url, redis_url, 4, options=WorkerOptions(num_cpus=1))
    ...                      # jobs submitted meanwhile are picked up by the workers
    pool.stop()              # after the branches in hand; shuts down a Ray it started

Importing this package imports Ray; the rest of ``services`` imports it only when Ray workers
are asked for.
"""

from ridgerider.workers.ray.host import ProblemStore, WorkerHost, WorkerOptions
from ridgerider.workers.ray.pool import (
    WorkerPool,
    WorkerPoolError,
    ensure_ray,
    start_workers,
)

__all__ = [
    "ProblemStore",
    "WorkerHost",
    "WorkerOptions",
    "WorkerPool",
    "WorkerPoolError",
    "ensure_ray",
    "start_workers",
]
