"""The one thread policy of every entry point that computes.

A dense ``eigh`` or a matrix product on more than one thread can return different bits than on
one (measured on Hessians of ~100 parameters and more), so a job resumed after a crash would not
reproduce its tree if ``resume`` computed with another thread count than ``run``. Every entry
point that rides branches (``run``, ``resume``, ``extend``, the service's workers,
``ridgerider worker``, cross-play) therefore calls :func:`use_compute_threads` with the same
default, :data:`COMPUTE_THREADS`: parallelism comes from workers, not from threads inside one.
"""

from __future__ import annotations

import torch

from ridgerider.core.lazy_dynamo import skip_dynamo_import

__all__ = ["COMPUTE_THREADS", "use_compute_threads"]

COMPUTE_THREADS = 1
"""Torch intra-op threads per computing process (a worker, or the CLI riding in-process)."""


def use_compute_threads(threads: int = COMPUTE_THREADS) -> None:
    """Set torch's intra-op threads for this process (``threads`` >= 1).

    Every process that computes calls this first, so it also keeps ``torch.optim`` from
    importing the compiler it never uses (:func:`~ridgerider.core.lazy_dynamo.skip_dynamo_import`:
    0.9 s per process).
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    skip_dynamo_import()
