"""What runs inside Ray actors: a worker host and the per-deployment problem store.

Both are plain classes; :mod:`.pool` wraps them with ``ray.remote`` where it creates them, so
they can be unit-tested (and read) without Ray. A worker host gets the archive's URLs as
:class:`~ridgerider.workers.ray.handover.UrlSource` (where to read each, see :mod:`.handover`)
and reads them in its own process.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import ray
import torch

from ridgerider.core.errors import SettingsError
from ridgerider.core.threads import use_compute_threads
from ridgerider.problems import RegisteredProblem, create
from ridgerider.services.archive import ArchiveUnavailableError, open_archive
from ridgerider.services.frontier.speculation import DEFAULT_SPECULATION
from ridgerider.workers.ray.handover import UrlSource
from ridgerider.workers.worker import BatchSize, ExpandFn, Worker, check_batch

__all__ = ["ProblemStore", "WorkerHost", "WorkerOptions"]


@dataclass(frozen=True)
class WorkerOptions:
    """Resources and behaviour of each Ray worker.

    Args:
        num_cpus: CPUs Ray reserves per worker.
        num_gpus: GPUs Ray reserves per worker (Ray then sets ``CUDA_VISIBLE_DEVICES``).
        torch_threads: ``torch.set_num_threads`` in the worker process.
        device: where the worker computes: ``"cpu"`` or ``"cuda[:i]"``; ``None`` (the default)
            means ``"cuda"`` for a worker that reserves GPUs and ``"cpu"`` otherwise. For CUDA
            the worker makes it the current device.

    A worker that reserves GPUs (``num_gpus > 0``) serves the jobs submitted with
    ``accelerator="gpu"`` and only those, computing their branches on ``device``; any other
    worker serves ``cpu`` jobs. Ray places GPU workers on nodes with free GPUs, so in a cluster
    GPU jobs run on the GPU nodes and CPU jobs never wait behind them. (``device="cpu"`` with
    ``num_gpus > 0`` serves GPU jobs on the CPU: for nodes whose GPU is a declared resource
    only, as in the multi-node tests.)
        batch: branches claimed at once, or ``"auto"`` (the default: sized from measured
            ride and queue times so the archive's round trips stay ~5 % of a worker's time,
            see :class:`~ridgerider.workers.worker.AdaptiveBatch`; a claim's exact branches of
            one job then ride together, ``core.expand_batched``). Claims of one were the
            default before rides were batched in the worker (on ~40 ms ``tree-rl`` branches
            ``"auto"`` then scaled no better); a worker riding claims of one took lever-game
            2.2-2.5x and tree-rl 1.7x longer than one riding ``"auto"`` claims.
        lease_s: lease length (``None``: each job's ``lease_s``).
        speculation: rides a ``dfs``/``priority``/``random`` job may have ahead of its turn
            (``services.frontier.speculation``; 0: admitted branches only).
        poll_s: longest pause between empty claims (the first after work is 10 ms).
        max_concurrency: threads of the actor (one rides, the others answer ``info``/``stop``).
    """

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    torch_threads: int = 1
    device: str | None = None
    batch: BatchSize = "auto"
    lease_s: float | None = None
    speculation: int = DEFAULT_SPECULATION
    poll_s: float = 0.05
    max_concurrency: int = 4

    def __post_init__(self) -> None:
        if self.num_cpus < 0:
            raise SettingsError("num_cpus", f"num_cpus: must be >= 0, got {self.num_cpus}")
        if self.num_gpus < 0:
            raise SettingsError("num_gpus", f"num_gpus: must be >= 0, got {self.num_gpus}")
        if self.torch_threads < 1:
            raise SettingsError(
                "torch_threads", f"torch_threads: must be >= 1, got {self.torch_threads}"
            )
        if self.device not in (None, "cpu") and not str(self.device).startswith("cuda"):
            raise SettingsError("device", f"device: 'cpu' or 'cuda[:i]', got {self.device!r}")
        check_batch(self.batch)

    @property
    def accelerator(self) -> str:
        """The jobs this worker serves: ``gpu`` when it reserves GPUs, else ``cpu``."""
        return "gpu" if self.num_gpus > 0 else "cpu"

    @property
    def compute_device(self) -> str:
        """Where it computes: ``device``, or ``cuda`` / ``cpu`` by ``num_gpus``."""
        if self.device is not None:
            return self.device
        return "cuda" if self.num_gpus > 0 else "cpu"


class ProblemStore:
    """Builds each (problem, parameters) once and keeps it in Ray's object store.

    Runs as one actor per pool, which owns the stored objects, so a worker that dies does not
    take them with it. Workers ask for a reference once per job and keep the problem.
    """

    def __init__(self, capacity: int = 32) -> None:
        self._refs: OrderedDict[str, ray.ObjectRef] = OrderedDict()
        self._capacity = capacity
        self.built = 0

    def ref(self, name: str, params: dict[str, Any]) -> list[ray.ObjectRef]:
        """A one-element list holding the reference (a list, so Ray does not resolve it)."""
        key = json.dumps([name, params], sort_keys=True)
        if key not in self._refs:
            self._refs[key] = ray.put(create(name, params))
            self.built += 1
            while len(self._refs) > self._capacity:
                self._refs.popitem(last=False)
        self._refs.move_to_end(key)
        return [self._refs[key]]

    def stats(self) -> dict[str, int]:
        """How many problems were built and how many are held."""
        return {"built": self.built, "held": len(self._refs)}


class WorkerHost:
    """A :class:`Worker` in its own process (the body of a Ray actor).

    Args:
        database: the archive (PostgreSQL or a SQLite file every worker can open): where to
            find its URL (a :class:`UrlSource`, as Ray actors get it), or the URL itself.
        redis: the Redis frontier, if the deployment uses one (likewise).
        job_id: serve this job until it finishes; ``None`` serves every running job until
            stopped.
        options: resources and behaviour.
        store: the :class:`ProblemStore` actor (``None``: build problems locally).
        expand_fn: replaces the expand step (simulated benchmarks only).
    """

    def __init__(
        self,
        database: UrlSource | str,
        redis: UrlSource | str | None,
        job_id: int | None,
        options: WorkerOptions,
        store: Any = None,
        expand_fn: ExpandFn | None = None,
    ) -> None:
        use_compute_threads(options.torch_threads)
        if options.compute_device.startswith("cuda"):
            torch.cuda.set_device(torch.device(options.compute_device))
        self._store = store
        database_url = database if isinstance(database, str) else database.resolve()
        redis_url = redis.resolve() if isinstance(redis, UrlSource) else redis
        try:
            self.archive = open_archive(
                database_url, redis_url, lease_s=options.lease_s, speculation=options.speculation
            )
        except ArchiveUnavailableError as exc:
            # Its message masks the password; the exception it chains to might not,
            # and Ray keeps the whole traceback of a failed actor (GCS, logs, the driver).
            raise ArchiveUnavailableError(exc.option, exc.url, exc.reason) from None
        extra: dict[str, Any] = {} if expand_fn is None else {"expand_fn": expand_fn}
        self.worker = Worker(
            self.archive.frontier,
            job_id=job_id,
            batch=options.batch,
            stop_when_idle=job_id is not None,
            poll_s=options.poll_s,
            make_problem=self._problem,
            accelerator=options.accelerator,
            device=options.compute_device,
            **extra,
        )

    def _problem(self, name: str, params: dict[str, Any]) -> RegisteredProblem:
        """Fetch the job's problem from the object store (the worker keeps it per job)."""
        if self._store is None:
            return create(name, params)
        (ref,) = ray.get(self._store.ref.remote(name, params))
        problem: RegisteredProblem = ray.get(ref)
        return problem

    def run(self) -> int:
        """Work until the job finishes (or :meth:`stop`); how many nodes this worker completed."""
        try:
            return self.worker.run()
        finally:
            self.archive.close()

    def stop(self) -> None:
        """Stop after the branch in hand."""
        self.worker.stop()

    def info(self) -> dict[str, Any]:
        """``pid``, ``worker_id``, ``completed`` and the ``(job, node)`` pairs being ridden."""
        return {
            "pid": os.getpid(),
            "worker_id": self.worker.worker_id,
            "completed": self.worker.completed,
            "node": ray.get_runtime_context().get_node_id() if ray.is_initialized() else None,
            "accelerator": self.worker.accelerator,
            "holding": [(lease.job_id, lease.node_id) for lease in self.worker.holding()],
        }
