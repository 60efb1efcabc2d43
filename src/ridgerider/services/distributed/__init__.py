"""Ray workers: the plain :class:`~ridgerider.services.worker.Worker` in Ray actors.

``start_workers(database_url, redis_url, n, job_id=None, ray_address=None, options=...)``
returns a supervised :class:`WorkerPool` (``.alive()``, ``.wait()``, ``.stop()``). Importing
this package imports Ray; the rest of ``services`` imports it only when Ray workers are asked
for.
"""

from ridgerider.services.distributed.host import ProblemStore, WorkerHost, WorkerOptions
from ridgerider.services.distributed.pool import (
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
