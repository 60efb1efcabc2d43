"""Ray workers: the plain :class:`~ridgerider.workers.worker.Worker` in Ray actors.

``start_workers(database_url, redis_url, n, job_id=None, ray_address=None, options=...)``
returns a supervised :class:`WorkerPool` (``.alive()``, ``.wait()``, ``.error``, ``.stop()``).
A service serving every job of its archive::

    from ridgerider.workers.ray import WorkerOptions, start_workers

    pool = start_workers(database_url, redis_url, 4, options=WorkerOptions(num_cpus=1))
    ...                      # jobs submitted meanwhile are picked up by the workers
    pool.stop()              # after the branches in hand; shuts down a Ray it started

The actors never receive the archive's URLs as arguments: the URLs reach them through a
private file of the driver or their node's ``RIDGERIDER_DATABASE_URL`` /
``RIDGERIDER_REDIS_URL`` (or ``..._FILE``), see :mod:`.handover`. On a cluster, set those on
every Ray node.

Importing this package imports Ray; the rest of ``services`` imports it only when Ray workers
are asked for.
"""

from ridgerider.workers.ray.handover import Handover, UrlSource, WorkerConfigError
from ridgerider.workers.ray.host import ProblemStore, WorkerHost, WorkerOptions
from ridgerider.workers.ray.pool import (
    WorkerPool,
    WorkerPoolError,
    ensure_ray,
    start_workers,
)

__all__ = [
    "Handover",
    "ProblemStore",
    "UrlSource",
    "WorkerConfigError",
    "WorkerHost",
    "WorkerOptions",
    "WorkerPool",
    "WorkerPoolError",
    "ensure_ray",
    "start_workers",
]
