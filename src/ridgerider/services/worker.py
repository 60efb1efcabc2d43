"""A worker: claim branches, expand them with the engine, complete them, keep leases alive."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ridgerider.core.branch import Branch
from ridgerider.core.expand import Expansion, expand
from ridgerider.core.settings import RRSettings
from ridgerider.problems import RegisteredProblem, create
from ridgerider.services.frontier.base import Frontier, Lease, default_worker_id

__all__ = ["ExpandFn", "MakeProblem", "NodeView", "OnNode", "Worker"]


class NodeView(Protocol):
    """What a progress callback may read of a finished node (a ``Node`` or a ``NodeRecord``)."""

    @property
    def key(self) -> str:
        """The node's fingerprint key."""

    @property
    def is_solution(self) -> bool | None:
        """Whether the node is a solution leaf."""


OnNode = Callable[[NodeView, int], None]
"""Progress callback: the node just completed and the job's ride steps so far."""

MakeProblem = Callable[[str, dict[str, Any]], RegisteredProblem]
"""Builds a job's problem from its registry name and stored parameters."""

ExpandFn = Callable[[RegisteredProblem, RRSettings, Branch], Expansion]
"""The expand step (``core.expand.expand``; benchmarks may swap in a simulated one)."""


@dataclass
class Worker:
    """Runs branches of one job (or of every running job) until there is nothing left.

    Args:
        frontier: where branches come from.
        job_id: serve only this job (and stop when it finishes); ``None`` serves every job.
        batch: branches claimed at once (ridden in turn, then completed in one transaction).
        on_node: progress callback (see :data:`OnNode`).
        stop_when_idle: with ``job_id=None``, stop when no job has work.
        make_problem: builds a job's problem once per worker (default: the registry's
            ``create``; Ray workers fetch it from the object store instead).
        expand_fn: the expand step (default ``core.expand.expand``).
    """

    frontier: Frontier
    job_id: int | None = None
    batch: int = 1
    on_node: OnNode | None = None
    stop_when_idle: bool = True
    poll_s: float = 0.02
    worker_id: str = field(default_factory=default_worker_id)
    make_problem: MakeProblem = create
    expand_fn: ExpandFn = expand
    completed: int = 0
    _held: list[Lease] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _problems: dict[int, tuple[RegisteredProblem, RRSettings]] = field(default_factory=dict)
    _lease_s: dict[int, float] = field(default_factory=dict)

    def stop(self) -> None:
        """Ask the loop to stop after the branch in hand."""
        self._stop.set()

    def holding(self) -> list[Lease]:
        """The leases of the branches in hand (being ridden) right now."""
        with self._lock:
            return list(self._held)

    def run(self) -> int:
        """Work until the job finishes (or :meth:`stop`); returns how many nodes it completed."""
        beat = threading.Thread(target=self._heartbeat, daemon=True)
        beat.start()
        try:
            while not self._stop.is_set():
                leases = self.frontier.claim(self.worker_id, self.batch, job_id=self.job_id)
                if not leases:
                    if self._idle_done():
                        break
                    time.sleep(self.poll_s)
                    continue
                with self._lock:
                    self._held = list(leases)
                rides = [(x, e) for x in leases if (e := self._expand(x)) is not None]
                recorded = self.frontier.complete_many(rides)  # one transaction per claim
                for (lease, expansion), ok in zip(rides, recorded, strict=True):
                    if ok:
                        self._completed(lease, expansion)
                with self._lock:
                    self._held = []
        finally:
            self._stop.set()
            beat.join()
        return self.completed

    def _idle_done(self) -> bool:
        storage = self.frontier.storage
        if self.job_id is not None:
            job = storage.get_job(self.job_id)
            return job is None or job.status != "running"
        return self.stop_when_idle and not storage.list_jobs(status="running", limit=1).items

    def _setup(self, job_id: int) -> tuple[RegisteredProblem, RRSettings]:
        if job_id not in self._problems:
            job = self.frontier.storage.get_job(job_id)
            assert job is not None
            problem = self.make_problem(job.problem, job.params)
            self._problems[job_id] = (problem, RRSettings.from_dict(job.settings))
            self._lease_s[job_id] = self.frontier.lease_s or job.lease_s
        return self._problems[job_id]

    def _expand(self, lease: Lease) -> Expansion | None:
        problem, settings = self._setup(lease.job_id)
        try:
            return self.expand_fn(problem, settings, lease.branch)
        except Exception as exc:
            self.frontier.fail(lease, f"{type(exc).__name__}: {exc}")
            return None

    def _completed(self, lease: Lease, expansion: Expansion) -> None:
        self.completed += 1
        if self.on_node is not None:
            job = self.frontier.storage.get_job(lease.job_id)
            self.on_node(expansion.node, job.steps if job else 0)

    def _heartbeat(self) -> None:
        """Extend the leases in hand three times per lease length."""
        period = 0.5
        while not self._stop.wait(period):
            with self._lock:
                held = list(self._held)
            if held:
                self.frontier.heartbeat(held)
                period = min(self._lease_s.get(lease.job_id, 1.5) for lease in held) / 3
