"""A worker: claim branches, expand them with the engine, complete them, keep leases alive."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from ridgerider.core.branch import Branch
from ridgerider.core.errors import SettingsError
from ridgerider.core.expand import Expansion, error_leaf, expand, restore
from ridgerider.core.expand_batched import expand_each
from ridgerider.core.ridge import OnStep, Ridge
from ridgerider.core.settings import RRSettings
from ridgerider.problems import RegisteredProblem, create
from ridgerider.schemas.enums import JobStatus
from ridgerider.services.frontier.base import Frontier, Lease, default_worker_id
from ridgerider.services.jobs import resolve_root
from ridgerider.services.storage.records import RideProgress
from ridgerider.workers.sizing import AdaptiveBatch

__all__ = [
    "AdaptiveBatch",
    "BatchSize",
    "ExpandFn",
    "MakeProblem",
    "NodeView",
    "OnNode",
    "OnRide",
    "Worker",
    "check_batch",
]

log = logging.getLogger(__name__)
BACKOFF_S = 0.2
"""First wait after a backend error; doubles up to :data:`MAX_BACKOFF_S`."""
MAX_BACKOFF_S = 5.0
FIRST_POLL_S = 0.01
"""First pause after an empty claim that followed work (a level's next branches come soon);
the pause doubles up to ``poll_s`` while nothing comes."""

BatchSize = int | Literal["auto"]
"""Branches per claim: a fixed count, or ``"auto"`` (see :class:`AdaptiveBatch`)."""


def check_batch(batch: object) -> None:
    """Raise :class:`SettingsError` unless ``batch`` is an int ≥ 1 or ``"auto"``."""
    if batch != "auto" and (not isinstance(batch, int) or isinstance(batch, bool) or batch < 1):
        raise SettingsError("batch", f"batch: an integer >= 1 or 'auto', got {batch!r}")


class NodeView(Protocol):
    """What a progress callback may read of a finished node (a ``Node`` or a ``NodeRecord``)."""

    @property
    def key(self) -> str:
        """The node's fingerprint key."""

    @property
    def is_solution(self) -> bool | None:
        """Whether the node is a solution leaf."""


OnNode = Callable[[NodeView, int], None]
"""Progress callback: the node just completed and the job's ride steps once its claim was."""

OnRide = Callable[[Lease, RideProgress], None]
"""Live progress callback: a branch in hand took another ride step."""

MakeProblem = Callable[[str, dict[str, Any]], RegisteredProblem]
"""Builds a job's problem from its registry name and stored parameters."""


class ExpandFn(Protocol):
    """The expand step (``core.expand.expand``; benchmarks may swap in a simulated one)."""

    def __call__(
        self,
        problem: RegisteredProblem,
        settings: RRSettings,
        branch: Branch,
        on_step: OnStep | None = None,
    ) -> Expansion:
        """Ride ``branch`` and branch again, reporting ride steps to ``on_step``."""


@dataclass
class Worker:
    """Runs branches of one job (or of every running job) until there is nothing left.

    Args:
        frontier: where branches come from.
        job_id: serve only this job (and stop when it finishes); ``None`` serves every job.
        batch: branches claimed at once (ridden in turn, then completed in one transaction);
            ``"auto"`` sizes every claim from the measured ride and queue times
            (:class:`AdaptiveBatch`).
        on_node: progress callback (see :data:`OnNode`).
        on_ride: live progress of the rides in hand, every step (see :data:`OnRide`); the
            heartbeat also writes it to the archive (``Storage.rides``) every
            ``progress_s`` while a ride runs.
        stop_when_idle: with ``job_id=None``, stop when no job has work.
        poll_s: longest pause between empty claims (see :data:`FIRST_POLL_S`).
        accelerator: the jobs this worker serves (``schemas.Accelerator``): ``cpu`` jobs, or
            ``gpu`` jobs (a worker holding a GPU).
        device: where the branches of ``gpu`` jobs are computed (``cuda``, ``cuda:N``; a job's
            own ``device`` setting is used for ``cpu`` jobs).
        make_problem: builds a job's problem once per worker (default: the registry's
            ``create``; Ray workers fetch it from the object store instead).
        expand_fn: the expand step (default ``core.expand.expand``).
        ride_together: expand the exact branches of one job in a claim together
            (``core.expand_batched``: rides in lockstep, the same bits as one by one); only
            with the default ``expand_fn``. ``False``: one branch after another.
        alone: no other worker claims this job's branches (a command's own single worker).
            With ``batch="auto"``, a claim of admitted branches ridden together is then
            followed by a claim of the cap (:class:`AdaptiveBatch`): riding together costs
            less per branch with every branch added. Shared jobs keep the model's size: a
            claim at the cap would leave the other workers a level's narrow start to wait
            out, and rides ahead of their turn may be wasted (both measured with
            ``benchmarks/whole_process.py``).
    """

    frontier: Frontier
    job_id: int | None = None
    batch: BatchSize = 1
    on_node: OnNode | None = None
    on_ride: OnRide | None = None
    progress_s: float = 2.0
    stop_when_idle: bool = True
    poll_s: float = 0.02
    worker_id: str = field(default_factory=default_worker_id)
    make_problem: MakeProblem = create
    expand_fn: ExpandFn = expand
    ride_together: bool = True
    alone: bool = False
    accelerator: str = "cpu"
    device: str = "cuda"
    completed: int = 0
    _held: list[Lease] = field(default_factory=list)
    _progress: dict[int, RideProgress] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _problems: dict[int, tuple[RegisteredProblem, RRSettings]] = field(default_factory=dict)
    _lease_s: dict[int, float] = field(default_factory=dict)
    _max_attempts: dict[int, int] = field(default_factory=dict)
    _sizer: AdaptiveBatch | None = None
    _pause: float = 0.0
    _ridges: dict[int, dict[tuple[str, int], list[Ridge]]] = field(default_factory=dict)
    """Per job, ridges recomputed for compacted branches (their siblings come next, mostly)."""

    def __post_init__(self) -> None:
        check_batch(self.batch)
        self._pause = min(FIRST_POLL_S, self.poll_s)
        if self.batch == "auto":
            self._sizer = AdaptiveBatch()

    def claim_size(self) -> int:
        """How many branches the next claim asks for."""
        return self._sizer.size if self._sizer is not None else int(self.batch)

    def stop(self) -> None:
        """Ask the loop to stop after the branch in hand."""
        self._stop.set()

    def holding(self) -> list[Lease]:
        """The leases of the branches in hand (being ridden) right now."""
        with self._lock:
            return list(self._held)

    def riding(self) -> dict[int, RideProgress]:
        """How far the rides of the branches in hand got, by node id."""
        with self._lock:
            return dict(self._progress)

    def run(self) -> int:
        """Work until the job finishes (or :meth:`stop`); returns how many nodes it completed.

        A backend error (a lost connection, a serialization failure, Redis restarting) costs at
        most the claim in hand: its leases expire and the branches are ridden again, while
        this loop backs off and goes on. Errors of one branch fail that branch only.
        """
        beat = threading.Thread(target=self._heartbeat, daemon=True)
        beat.start()
        backoff = BACKOFF_S
        try:
            while not self._stop.is_set():
                try:
                    finished = self._round()
                except Exception:
                    log.exception("worker %s: backend error, retrying", self.worker_id)
                    with self._lock:
                        self._held, self._progress = [], {}
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
                    continue
                backoff = BACKOFF_S
                if finished:
                    break
        finally:
            self._stop.set()
            beat.join()
        return self.completed

    def _round(self) -> bool:
        """Claim, ride and complete one batch of branches; ``True`` when there is no more work."""
        t0 = time.perf_counter()
        leases = self.frontier.claim(
            self.worker_id, self.claim_size(), job_id=self.job_id, accelerator=self.accelerator
        )
        if not leases:
            if self._idle_done():
                return True
            self._stop.wait(self._pause)  # 10 ms after work, doubling up to poll_s when idle
            self._pause = min(2 * self._pause, self.poll_s)
            return False
        self._pause = min(FIRST_POLL_S, self.poll_s)
        with self._lock:
            self._held = list(leases)
            self._progress = {x.node_id: RideProgress(0, None) for x in leases}
        t1 = time.perf_counter()
        expansions, batched = self._expand_claim(leases)
        rides = [(x, e) for x, e in zip(leases, expansions, strict=True) if e is not None]
        t2 = time.perf_counter()
        recorded = self._complete(rides)
        if self._sizer is not None:
            queue_s = (t1 - t0) + (time.perf_counter() - t2)
            together = self.alone and batched and all(x.rank is not None for x in leases)
            self._sizer.observe(queue_s, t2 - t1, len(leases), together=together)
        with self._lock:  # before the callbacks: a finished ride is no longer in flight
            self._held, self._progress = [], {}
        self._completed([ride for ride, ok in zip(rides, recorded, strict=True) if ok])
        return False

    def _complete(self, rides: list[tuple[Lease, Expansion]]) -> list[bool]:
        """Complete the claim in one transaction; if that fails, each branch on its own.

        A branch whose own completion fails (the database refuses its values) is failed with
        that error, so it cannot take the rest of the claim, or the worker, down with it. If
        the backend itself is down the single completions fail too and the error propagates
        to :meth:`run`, which backs off.
        """
        try:
            return self.frontier.complete_many(rides)  # one transaction per claim
        except Exception:
            if not rides:
                raise
        recorded: list[bool] = []
        failures = 0
        for lease, expansion in rides:
            try:
                recorded.append(self.frontier.complete(lease, expansion))
            except Exception as exc:
                failures += 1
                if failures == len(rides) and not self._backend_alive():
                    raise
                self.frontier.fail(lease, f"completion failed: {type(exc).__name__}: {exc}")
                recorded.append(False)
        return recorded

    def _backend_alive(self) -> bool:
        """Whether the archive answers a trivial read (tells a bad branch from a dead backend)."""
        try:
            self.frontier.storage.get_job(0)
        except Exception:
            return False
        return True

    def _idle_done(self) -> bool:
        storage = self.frontier.storage
        if self.job_id is not None:
            job = storage.get_job(self.job_id)
            return job is None or job.status != JobStatus.RUNNING
        return (
            self.stop_when_idle and not storage.list_jobs(status=JobStatus.RUNNING, limit=1).items
        )

    def _setup(self, job_id: int) -> tuple[RegisteredProblem, RRSettings]:
        if job_id not in self._problems:
            job = self.frontier.storage.get_job(job_id)
            assert job is not None
            problem = self.make_problem(job.problem, job.params)
            settings = RRSettings.from_dict(job.settings)
            if job.accelerator == "gpu":  # computed on this worker's device
                settings = replace(settings, device=self.device)
            self._problems[job_id] = (problem, settings)
            self._lease_s[job_id] = self.frontier.lease_s or job.lease_s
            self._max_attempts[job_id] = job.max_attempts
        return self._problems[job_id]

    def _expand_claim(self, leases: list[Lease]) -> tuple[list[Expansion | None], bool]:
        """Each lease's expansion (``None``: failed), and whether some rode together.

        A job's exact branches in the claim ride together (``expand_each``).
        """
        out: dict[int, Expansion | None] = {}
        jobs: dict[int, list[Lease]] = {}
        together = self.ride_together and self.expand_fn is expand
        for lease in leases:
            if together and lease.branch.direction is not None:
                jobs.setdefault(lease.job_id, []).append(lease)
        for group in jobs.values():
            if len(group) > 1:
                out.update(zip([x.node_id for x in group], self._expand_many(group), strict=True))
        expansions = [out[x.node_id] if x.node_id in out else self._expand(x) for x in leases]
        return expansions, bool(out)

    def _expand_many(self, leases: list[Lease]) -> list[Expansion | None]:
        """Non-root branches of one job together: ``expand_each``, every branch failing alone."""
        try:
            problem, settings = self._setup(leases[0].job_id)
        except Exception:  # each fails as it does alone
            return [self._expand(x) for x in leases]
        reports: list[OnStep | None] = [self._on_step(x) for x in leases]
        try:
            outs = expand_each(problem, settings, [x.branch for x in leases], reports)
        except Exception:  # not one branch's error (those come back in outs): ride them alone
            log.exception("worker %s: batched expansion failed, one by one", self.worker_id)
            return [self._expand(x) for x in leases]
        return [self._outcome(x, o) for x, o in zip(leases, outs, strict=True)]

    def _on_step(self, lease: Lease) -> OnStep:
        """The live progress of ``lease``'s ride: the heartbeat's and ``on_ride``'s."""

        def on_step(steps: int, loss: float) -> None:
            done = RideProgress(steps, loss)
            self._progress[lease.node_id] = done  # one dict store: atomic, no lock needed
            if self.on_ride is not None:
                self.on_ride(lease, done)

        return on_step

    def _expand(self, lease: Lease) -> Expansion | None:
        try:
            problem, settings = self._setup(lease.job_id)
        except Exception as exc:  # the problem cannot be built here: this branch fails
            self.frontier.fail(lease, f"building the problem: {type(exc).__name__}: {exc}")
            return None
        try:
            # A job accepted before its MIS was found has a placeholder root: find it first.
            branch = resolve_root(
                self.frontier.storage, lease.job_id, problem, settings, lease.branch
            )
            # A branch of a finished job that was compacted: recompute its ridge first.
            cache = self._ridges.setdefault(lease.job_id, {})
            if len(cache) > 256:
                cache.clear()
            branch = restore(problem, settings, branch, cache)
            return self.expand_fn(problem, settings, branch, on_step=self._on_step(lease))
        except Exception as exc:
            return self._outcome(lease, exc)

    def _outcome(self, lease: Lease, result: Expansion | Exception) -> Expansion | None:
        """An expansion, or for an error the branch's error leaf (last attempt) or its failure."""
        if not isinstance(result, Exception):
            return result
        error = f"{type(result).__name__}: {result}"
        last = lease.attempt >= self._max_attempts[lease.job_id]
        if last and lease.branch.depth > 0:
            log.warning("branch %s of job %s failed: %s", lease.branch.key, lease.job_id, error)
            return error_leaf(lease.branch, error)  # the job goes on with its other branches
        self.frontier.fail(lease, error)  # retried; the root's last failure fails the job
        return None

    def _completed(self, done: list[tuple[Lease, Expansion]]) -> None:
        self.completed += len(done)
        if self.on_node is not None:  # the job's steps read once a claim, not once a node
            ids = {lease.job_id for lease, _ in done}
            jobs = {job_id: self.frontier.storage.get_job(job_id) for job_id in ids}
            for lease, expansion in done:
                self.on_node(expansion.node, getattr(jobs[lease.job_id], "steps", 0))

    def _heartbeat(self) -> None:
        """Extend the leases in hand three times per lease length, with their rides' progress.

        While a ride takes steps the beat comes every ``progress_s`` (if shorter), so the
        archive's view of a long ride stays live; the write is one small update per beat.
        """
        period = 0.5
        sent: dict[int, RideProgress] = {}
        while not self._stop.wait(period):
            with self._lock:
                held, progress = list(self._held), dict(self._progress)
            if held:
                moved = {k: p for k, p in progress.items() if sent.get(k) != p}
                try:
                    self.frontier.heartbeat(held, progress=moved)
                except Exception:  # a missed beat costs at most the lease; try again soon
                    log.warning("worker %s: heartbeat failed", self.worker_id, exc_info=True)
                    period = 0.5
                    continue
                period = min(self._lease_s.get(lease.job_id, 1.5) for lease in held) / 3
                if moved:  # riding: beat again soon
                    period = min(period, self.progress_s)
                sent = progress
