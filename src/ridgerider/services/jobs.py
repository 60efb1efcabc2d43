"""Job lifecycle: submit (validate, find the MIS, store, start), extend, resume, cancel, report.

Every function takes the storage and frontier it works on, so the same code serves the CLI
(SQLite file, in-process worker), the API and a cluster (PostgreSQL + Redis, many workers).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, cast

import torch

from ridgerider.core.branch import Branch, Fingerprint, Node
from ridgerider.core.mis import MISResult
from ridgerider.core.search import branch_point, coverage, root_branch
from ridgerider.core.selection import CHOSEN_METRICS, SELECTION_METRIC, choose
from ridgerider.core.settings import MISSettings, RRSettings
from ridgerider.problems import RegisteredProblem, create
from ridgerider.schemas.enums import Accelerator, JobStatus
from ridgerider.services.frontier.base import Frontier
from ridgerider.services.listing import job_summary
from ridgerider.services.storage.base import Storage
from ridgerider.services.storage.records import JobRecord, JobSpec, SolutionRecord

__all__ = [
    "JobNotFoundError",
    "Submission",
    "cancel",
    "chosen_summary",
    "deferred_root",
    "delete",
    "extend",
    "fail",
    "interrupt",
    "job_result",
    "job_summary",
    "mis_summary",
    "resolve_root",
    "resume",
    "start",
    "submit",
    "submit_job",
]


log = logging.getLogger(__name__)


class JobNotFoundError(LookupError):
    """No stored job has this id."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"no job {job_id}")
        self.job_id = job_id


def mis_summary(mis: MISResult) -> dict[str, Any]:
    """What a job keeps of its MIS (θ itself is the root branch)."""
    return {
        "loss": mis.loss,
        "grad_norm": mis.grad_norm,
        "negative_eigenvalues": mis.negative_eigenvalues,
        "method": mis.method,
        "iterations": mis.iterations,
        "spectrum": mis.spectrum,
    }


@dataclass(frozen=True)
class Submission:
    """A validated job request: the built problem, its settings and seed, built once.

    Everything downstream (finding the MIS, storing the job, the CLI's report) reads the problem
    from here instead of creating it again from its name and parameters.
    """

    problem: RegisteredProblem
    settings: RRSettings
    seed: int = 0
    wall_time_s: float | None = None
    mis_settings: MISSettings | None = None
    owner_id: int | None = None
    idempotency_key: str | None = None
    accelerator: str = "cpu"
    """Which workers ride it (``schemas.Accelerator``): ``cpu`` or ``gpu``."""
    name: str | None = None
    tags: tuple[str, ...] = ()

    @classmethod
    def build(
        cls, problem: str, params: dict[str, Any] | None, settings: RRSettings, **rest: Any
    ) -> Submission:
        """Build the registered problem from its name and parameters, once.

        Raises ``ParamError`` / ``UnknownProblemError`` for an invalid problem.
        """
        return cls(create(problem, params), settings, **rest)


def submit(
    storage: Storage,
    frontier: Frontier,
    problem: str,
    params: dict[str, Any] | None,
    settings: RRSettings,
    *,
    seed: int = 0,
    lease_s: float = 60.0,
    max_attempts: int = 3,
    start_now: bool = True,
    **rest: Any,
) -> JobRecord:
    """:func:`submit_job` for a problem given by name and parameters (see :class:`Submission`)."""
    submission = Submission.build(problem, params, settings, seed=seed, **rest)
    return submit_job(
        storage,
        frontier,
        submission,
        lease_s=lease_s,
        max_attempts=max_attempts,
        start_now=start_now,
    )


def submit_job(
    storage: Storage,
    frontier: Frontier,
    submission: Submission,
    *,
    lease_s: float = 60.0,
    max_attempts: int = 3,
    start_now: bool = True,
    defer_mis: bool = False,
) -> JobRecord:
    """Find the submission's MIS, store the job with its root branch and start it.

    ``defer_mis`` stores the job at once with a placeholder root (:func:`deferred_root`) and
    leaves finding the MIS to the worker that claims it (:func:`resolve_root`): the service
    accepts a job in milliseconds whatever its problem, and the tree is the same. It needs the
    default MIS settings (the only ones a stored job can name).
    Raises ``DuplicateJobError`` when the owner already used the idempotency key.
    """
    t0 = time.perf_counter()
    built, settings, seed = submission.problem, submission.settings, submission.seed
    if defer_mis:
        if submission.mis_settings is not None:
            raise ValueError("a deferred MIS is found with the default MIS settings")
        summary, root = {}, deferred_root(seed)
    else:
        gen = torch.Generator().manual_seed(seed)
        mis = branch_point(built, settings, submission.mis_settings, gen)
        summary, root = mis_summary(mis), root_branch(mis, seed)
    spec = JobSpec(
        problem=built.name,
        params=built.params_dict(),
        seed=seed,
        settings=settings.to_dict(),
        mis=summary,
        wall_time_s=submission.wall_time_s,
        lease_s=lease_s,
        max_attempts=max_attempts,
        owner_id=submission.owner_id,
        elapsed_s=time.perf_counter() - t0,
        idempotency_key=submission.idempotency_key,
        accelerator=Accelerator(submission.accelerator),
        name=submission.name,
        tags=tuple(submission.tags),
    )
    job = storage.create_job(spec, root)
    if start_now:
        start(storage, frontier, job.id)
    return _get(storage, job.id)


def deferred_root(seed: int) -> Branch:
    """The root a job is stored with before its MIS is found: no parameters yet."""
    return Branch(torch.empty(0, dtype=torch.float64), None, None, (), seed, 0.0)


def resolve_root(
    storage: Storage, job_id: int, problem: RegisteredProblem, settings: RRSettings, branch: Branch
) -> Branch:
    """The branch to expand: ``branch`` itself, or for a :func:`deferred_root` the MIS.

    Finds the MIS exactly as :func:`submit_job` would have (same generator seed, default MIS
    settings), records its summary on the job and returns the root branch at it (the job is
    running meanwhile, so the time counts in its elapsed time). Recording again after a retry
    writes the same.
    """
    if branch.fingerprint or branch.theta.numel():
        return branch
    mis = branch_point(problem, settings, None, torch.Generator().manual_seed(branch.seed))
    storage.set_mis(job_id, mis_summary(mis))
    return root_branch(mis, branch.seed)


def _get(storage: Storage, job_id: int) -> JobRecord:
    job = storage.get_job(job_id)
    if job is None:
        raise JobNotFoundError(job_id)
    return job


def start(storage: Storage, frontier: Frontier, job_id: int) -> bool:
    """``queued → running``, then admit the root; ``False`` if the job was not queued.

    The database is the source of truth: once the job is ``running`` it is accepted. If the
    frontier cannot index the admitted root right now (Redis down), the job is not lost: the
    frontier rebuilds its index from the database when it is back (its reaper's tick).
    """
    if not storage.transition(job_id, JobStatus.RUNNING):
        return False
    try:
        frontier.advance(job_id)
    except Exception:
        log.warning("job %s: the frontier is unavailable; it resynchronises later", job_id)
    return True


def interrupt(storage: Storage, job_id: int) -> bool:
    """Mark a job whose process was interrupted (Ctrl-C) as stopped.

    It becomes ``cancelled`` with ``stopped_by="interrupted"``; ``resume`` continues it.
    """
    if not storage.transition(job_id, JobStatus.CANCELLED, stopped_by="interrupted"):
        return False
    storage.add_event(job_id, "interrupted", {})
    return True


def fail(storage: Storage, job_id: int, error: str) -> bool:
    """End a queued or running job ``failed`` with ``error`` (``resume`` can run it again)."""
    return storage.transition(job_id, JobStatus.FAILED, error=error)


def cancel(storage: Storage, job_id: int) -> bool:
    """Cancel a queued or running job (in-flight completions are then refused)."""
    return storage.transition(job_id, JobStatus.CANCELLED)


def delete(storage: Storage, job_id: int) -> bool:
    """Delete a job and everything it stored; a queued or running job is cancelled first.

    Cancelling first stops workers from claiming more of its branches; one still riding a
    branch finds the row gone and its completion refused. ``False`` for an unknown job.
    """
    job = storage.get_job(job_id)
    if job is None:
        return False
    if not job.finished:
        cancel(storage, job_id)
    return storage.delete_job(job_id)


def extend(
    storage: Storage,
    frontier: Frontier,
    job_id: int,
    *,
    max_nodes: int | None = None,
    max_steps: int | None = None,
    wall_time_s: float | None = None,
) -> bool:
    """Raise a job's budgets; a job a budget stopped runs again. Whether there is work now."""
    _get(storage, job_id)
    running = storage.extend_job(
        job_id, max_nodes=max_nodes, max_steps=max_steps, wall_time_s=wall_time_s
    )
    if running:
        frontier.advance(job_id)
    return running


def resume(storage: Storage, frontier: Frontier, job_id: int) -> JobRecord:
    """Make a job whose process died (or that failed or was cancelled) run again.

    Leases of dead local processes are released at once (others expire by themselves),
    dead-lettered branches get fresh attempts, and the sequencer picks up where it stopped.
    """
    job = _get(storage, job_id)
    if job.status == JobStatus.FAILED:
        storage.requeue_dead(job_id)
    if job.status in (JobStatus.QUEUED, JobStatus.FAILED, JobStatus.CANCELLED):
        storage.transition(job_id, JobStatus.RUNNING)
        storage.add_event(job_id, "resumed", {"from": job.status})
    frontier.release_orphans(job_id)
    frontier.advance(job_id)
    frontier.reindex(job_id)
    return _get(storage, job_id)


class _SolutionView:
    """What ``core.search.coverage`` reads of a node."""

    is_solution = True

    def __init__(self, solution: SolutionRecord) -> None:
        self.solution_key = solution.solution_key


def job_result(
    storage: Storage, job_id: int, problem: RegisteredProblem | None = None
) -> dict[str, Any]:
    """A job in the JSON shape of ``ridgerider run`` (plus ``job_id``)."""
    job = _get(storage, job_id)
    sols = storage.solutions(job_id)
    problem = problem or create(job.problem, job.params)
    out: dict[str, Any] = {
        "job_id": job.id,
        "problem": job.problem,
        "params": problem.params_dict(),
        "seed": job.seed,
        "method": job.settings["method"],
        "order": job.settings["order"],
        "mis": {
            **{k: job.mis[k] for k in ("loss", "grad_norm", "negative_eigenvalues")},
            "spectrum": job.mis.get("spectrum", []),  # lowest eigenvalues, repeats included
        }
        if job.mis
        else None,  # a worker has not found it yet (see ``submit_job(defer_mis=True)``)
        "nodes": job.nodes,
        "solutions": [
            {"fingerprint": [list(c) for c in s.fingerprint], "loss": s.loss, "metrics": s.metrics}
            for s in sols
        ],
        "elapsed_s": job.elapsed_s,
        "status": job.status,
        "stopped_by": job.stopped_by,
        "error": job.error,
    }
    cov = coverage(problem, cast(list[Node], [_SolutionView(s) for s in sols]))
    if cov is not None:
        out["coverage"] = cov
    best = choose(sols)
    if best is not None:
        out["chosen"] = chosen_summary(best.fingerprint, best.loss, best.metrics)
    return out


def chosen_summary(
    fingerprint: Fingerprint, loss: float, metrics: dict[str, Any]
) -> dict[str, Any]:
    """The chosen solution (``core.selection``) as reports show it: what chose it, its scores."""
    return {
        "by": SELECTION_METRIC,
        "fingerprint": [list(c) for c in fingerprint],
        "loss": loss,
        "metrics": {
            **{k: metrics[k] for k in CHOSEN_METRICS if k in metrics},
            **{k: v for k, v in metrics.items() if k not in CHOSEN_METRICS},
        },
    }
