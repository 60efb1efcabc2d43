"""Plain records returned by every storage (no ORM objects leave a storage)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, get_args, get_origin, get_type_hints

from ridgerider.schemas.enums import JobStatus

if TYPE_CHECKING:  # torch: loaded where tensors are decoded, never by a listing
    from ridgerider.core.branch import Fingerprint

__all__ = [
    "NODE_RESULT_FIELDS",
    "NODE_RESULT_TYPES",
    "TREE_COLUMNS",
    "DuplicateJobError",
    "EventRecord",
    "JobRecord",
    "JobSpec",
    "NodeRecord",
    "NodeResult",
    "Page",
    "RideProgress",
    "RideRecord",
    "SolutionRecord",
    "TokenRecord",
    "UserRecord",
    "parse_fingerprint_key",
]

T = TypeVar("T")


def parse_fingerprint_key(key: str) -> Fingerprint:
    """Inverse of ``core.fingerprint_key``: ``"0+.3-"`` → ``((0, 1), (3, -1))``."""
    if not key:
        return ()
    return tuple((int(part[:-1]), 1 if part[-1] == "+" else -1) for part in key.split("."))


class DuplicateJobError(ValueError):
    """A job with this owner and idempotency key is already stored."""

    def __init__(self, owner_id: int | None, key: str) -> None:
        super().__init__(f"owner {owner_id} already submitted a job with key {key!r}")
        self.owner_id = owner_id
        self.key = key


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; pass ``next_cursor`` back to get the next (``None``: the end)."""

    items: list[T]
    next_cursor: int | None


@dataclass(frozen=True)
class UserRecord:
    """A user."""

    id: int
    name: str
    is_admin: bool
    created_at: datetime


@dataclass(frozen=True)
class TokenRecord:
    """An API token's metadata (never the secret)."""

    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class JobSpec:
    """What a new job needs: the problem, how to search it, its MIS and its budgets."""

    problem: str
    params: dict[str, Any]
    seed: int
    settings: dict[str, Any]
    """``RRSettings.to_dict()``: ``max_nodes`` and ``max_steps`` are budgets."""
    mis: dict[str, Any]
    wall_time_s: float | None = None
    lease_s: float = 60.0
    max_attempts: int = 3
    owner_id: int | None = None
    elapsed_s: float = 0.0
    """Time already spent on the job before it is stored (finding the MIS)."""
    idempotency_key: str | None = None
    """A retried submission with the same key (and owner) returns this job."""
    accelerator: str = "cpu"
    """Which workers ride it: ``cpu`` or ``gpu`` (``schemas.Accelerator``)."""
    name: str | None = None
    """A short label to find the job by (``list_jobs(name=...)``)."""
    tags: tuple[str, ...] = ()
    """Short labels to filter by (``list_jobs(tag=...)``)."""


@dataclass(frozen=True)
class JobRecord:
    """A stored job and how far it got."""

    id: int
    owner_id: int | None
    problem: str
    params: dict[str, Any]
    seed: int
    settings: dict[str, Any]
    mis: dict[str, Any]
    status: str
    stopped_by: str | None
    error: str | None
    wall_time_s: float | None
    lease_s: float
    max_attempts: int
    nodes: int
    """Nodes of the tree finished so far (the node budget used)."""
    steps: int
    """Ride steps of those nodes (the step budget used)."""
    admitted: int
    active_s: float
    segment_start: float | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    accelerator: str = "cpu"
    """Which workers ride it: ``cpu`` or ``gpu``."""
    name: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def elapsed_s(self) -> float:
        """Running time so far (the current segment measured on this machine's clock)."""
        running = time.time() - self.segment_start if self.segment_start is not None else 0.0
        return self.active_s + max(running, 0.0)

    @property
    def finished(self) -> bool:
        """Whether the job reached a final status."""
        return JobStatus(self.status).finished


@dataclass(frozen=True, kw_only=True)
class NodeResult:
    """What riding a branch produced: the result columns of a ``nodes`` row.

    The one declaration of those columns: the row codec, the hot statements, the PostgreSQL
    batch path and the in-memory storage derive their lists from it, and a test checks the
    ORM model (:class:`~.models.Node`) against it. Every field is ``None`` until the node is
    done. Each is the core ``Node``'s attribute of the same name, except ``trace``.
    """

    eigenvalue: float | None = None
    eigenvalue_end: float | None = None
    loss_start: float | None = None
    loss: float | None = None
    steps: int | None = None
    end_reason: str | None = None
    leaf_reason: str | None = None
    is_leaf: bool | None = None
    is_solution: bool | None = None
    solution_key: str | None = None
    n_children: int | None = None
    crossings: int | None = None
    metrics: dict[str, Any] | None = None
    trace: dict[str, Any] | None = None
    """Per-ride detail: ``losses``, ``spectrum`` and the ``dtype`` of the end parameters."""


def _value_type(hint: Any) -> type:
    """``float`` for ``float | None``, ``dict`` for ``dict[str, Any] | None``."""
    (value,) = (a for a in get_args(hint) if a is not type(None))
    return get_origin(value) or value


NODE_RESULT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(NodeResult))
"""The result columns of a ``nodes`` row, in declaration order."""
TREE_COLUMNS: tuple[str, ...] = (
    "id",
    "parent_id",
    "key",
    "depth",
    "rank",
    "status",
    "eigenvalue",
    "loss",
    "steps",
    "end_reason",
    "is_leaf",
    "is_solution",
    "metrics",
)
"""What drawing a tree needs of each node, in the order ``Storage.tree_rows`` returns it.

``metrics`` comes as its stored JSON text (``None`` until the node is done), not decoded:
the compact tree form splices it into its answer as it is.
"""
NODE_RESULT_TYPES: dict[str, type] = {
    name: _value_type(hint) for name, hint in get_type_hints(NodeResult).items()
}
"""Each result column's Python type, ``None`` left out (``dict[str, Any] | None`` → ``dict``)."""


@dataclass(frozen=True)
class NodeRecord(NodeResult):
    """A stored branch or node (its :class:`NodeResult` fields are ``None`` until it is done)."""

    id: int
    job_id: int
    parent_id: int | None
    key: str
    depth: int
    status: str
    attempts: int
    rank: int | None
    last_error: str | None = None
    finished_at: datetime | None = None

    @property
    def fingerprint(self) -> Fingerprint:
        """The choices that led here."""
        return parse_fingerprint_key(self.key)


@dataclass(frozen=True)
class RideProgress:
    """How far a ride in flight got: what a worker's heartbeat reports for a held branch."""

    steps: int
    """Steps taken so far: the ride's, then those of a leaf's polish."""
    loss: float | None
    """The loss after the last step (``None`` before the first)."""


@dataclass(frozen=True)
class RideRecord:
    """A branch being ridden right now (a leased row) and its last reported progress."""

    node_id: int
    key: str
    depth: int
    worker: str | None
    attempts: int
    steps: int
    """Steps its holder last reported (0 until the first heartbeat with progress)."""
    loss: float | None
    loss_start: float | None
    """The loss at the branch's start (its parent's loss after the ride)."""

    @property
    def fingerprint(self) -> Fingerprint:
        """The choices that lead to this branch."""
        return parse_fingerprint_key(self.key)

    @classmethod
    def of_row(cls, row: Any) -> RideRecord:
        """From a leased ``nodes`` row (a SQL row or the in-memory twin: same names)."""
        return cls(
            node_id=row.id,
            key=row.key,
            depth=row.depth,
            worker=row.lease_owner,
            attempts=row.attempts,
            steps=row.ride_steps or 0,
            loss=row.ride_loss,
            loss_start=row.branch_loss,
        )


@dataclass(frozen=True)
class SolutionRecord:
    """A solution leaf, in the order the single-worker search finds it."""

    node_id: int
    key: str
    rank: int
    solution_key: str | None
    loss: float
    metrics: dict[str, Any]

    @property
    def fingerprint(self) -> Fingerprint:
        """The choices that led to this solution."""
        return parse_fingerprint_key(self.key)


@dataclass(frozen=True)
class EventRecord:
    """A job event."""

    id: int
    job_id: int
    at: datetime
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
