"""The states a job, a node and a cross-play run can be in: one spelling for each.

They are ``StrEnum``s, so a member equals its text (``JobStatus.RUNNING == "running"``) and
stored rows, JSON bodies and query strings keep their plain spelling.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Accelerator", "CrossplayStatus", "JobStatus", "NodeStatus"]


class Accelerator(StrEnum):
    """Which workers ride a job's branches: CPU workers, or workers holding a GPU.

    A worker serves one kind: a Ray worker that reserves GPUs (``num_gpus > 0``) serves ``gpu``
    jobs only, every other worker ``cpu`` jobs only, so CPU jobs never wait behind GPU jobs and
    GPU jobs never land on a CPU-only machine.
    """

    CPU = "cpu"
    GPU = "gpu"


class JobStatus(StrEnum):
    """A search job's lifecycle: ``queued → running → succeeded | failed | cancelled``."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """Whether the job has stopped (it can still be resumed or extended)."""
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class NodeStatus(StrEnum):
    """A branch row's state: waiting in the frontier, leased to a worker, done, or dead."""

    WAITING = "waiting"
    LEASED = "leased"
    DONE = "done"
    DEAD = "dead"


class CrossplayStatus(StrEnum):
    """A cross-play run's lifecycle: ``queued → running → succeeded | failed``."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
