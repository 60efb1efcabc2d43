"""The in-memory storage's tables: mutable rows of jobs and nodes, and the dictionaries.

:class:`MemoryTables` holds every table of :class:`~.memory.InMemoryStorage` behind one lock;
:class:`~..frontier.memory.MemoryFrontier` works on its rows directly.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ridgerider.schemas.enums import JobStatus, NodeStatus
from ridgerider.services.storage.base import Storage
from ridgerider.services.storage.compact import compact_record
from ridgerider.services.storage.models import utcnow
from ridgerider.services.storage.records import (
    NODE_RESULT_FIELDS,
    EventRecord,
    JobRecord,
    JobSpec,
    NodeRecord,
    TokenRecord,
    UserRecord,
)
from ridgerider.services.storage.tables import decode_branch

if TYPE_CHECKING:  # torch: loaded where tensors are decoded, never by a listing
    from ridgerider.core.branch import Branch

__all__ = ["JobRow", "MemoryTables", "NodeRow"]


@dataclass
class JobRow:
    """Mutable twin of the ``jobs`` table row."""

    id: int
    spec: JobSpec
    settings: dict[str, Any]
    wall_time_s: float | None
    status: str = JobStatus.QUEUED
    stopped_by: str | None = None
    error: str | None = None
    active_s: float = 0.0
    segment_start: float | None = None
    created_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    pushed: int = 0
    ranked: int = 0
    prefix: int = 0
    prefix_steps: int = 0
    admitted: int = 0
    rng_state: list[Any] | None = None


@dataclass
class NodeRow:
    """Mutable twin of the ``nodes`` table row."""

    id: int
    job_id: int
    parent_id: int | None
    key: str
    depth: int
    child_index: int
    branch_loss: float | None
    branch_data: bytes
    status: str = NodeStatus.WAITING
    attempts: int = 0
    lease_owner: str | None = None
    lease_token: str | None = None
    lease_expires: float | None = None
    last_error: str | None = None
    seq: int | None = None
    rank: int | None = None
    slot: int | None = None
    ride_steps: int | None = None
    ride_loss: float | None = None
    values: dict[str, Any] = field(default_factory=dict)
    children: list[int] = field(default_factory=list)
    finished_at: datetime | None = None


class MemoryTables(Storage):
    """The tables of the in-memory storage; ``lock`` guards every read and write."""

    def __init__(self, clock: Any = time.time) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.jobs: dict[int, JobRow] = {}
        self.nodes: dict[int, NodeRow] = {}
        self.keys: dict[tuple[int, str], int] = {}
        self.ranks: dict[tuple[int, int], int] = {}
        self.solution_ids: dict[int, list[int]] = {}
        self._users: dict[int, UserRecord] = {}
        self._tokens: dict[int, tuple[TokenRecord, str]] = {}
        self._events: dict[int, list[EventRecord]] = {}
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        """A fresh row id."""
        return next(self._ids)

    def insert_node(
        self,
        job_id: int,
        parent_id: int | None,
        key: str,
        depth: int,
        child_index: int,
        loss: float | None,
        data: bytes,
    ) -> bool:
        """Insert a branch unless the job already has one with this key."""
        if (job_id, key) in self.keys:
            return False
        row = NodeRow(self.next_id(), job_id, parent_id, key, depth, child_index, loss, data)
        self.nodes[row.id] = row
        self.keys[(job_id, key)] = row.id
        if parent_id is not None:
            self.nodes[parent_id].children.append(row.id)
        return True

    def branch_of(self, row: NodeRow) -> Branch:
        """The branch a row holds.

        A record stored without θ takes its parent's end θ; a done root's, its own (see
        ``frontier.codec.ridden_branch``).
        """
        parent = row if row.parent_id is None else self.nodes.get(row.parent_id)
        theta = None if parent is None else parent.values.get("theta_data")
        return decode_branch(row.branch_data, theta)

    def compact(self, job_id: int) -> int:
        """Shrink a finished job's branch rows to their headers (``storage.compact``)."""
        changed = 0
        for row in self.nodes.values():
            if row.job_id == job_id and row.parent_id is not None:
                small = compact_record(row.branch_data, row.status)
                if small is not None and len(small) < len(row.branch_data):
                    row.branch_data, changed = small, changed + 1
        return changed

    def job_record(self, job: JobRow) -> JobRecord:
        """Snapshot of a job row."""
        s = job.spec
        return JobRecord(
            id=job.id,
            owner_id=s.owner_id,
            problem=s.problem,
            params=s.params,
            seed=s.seed,
            settings=dict(job.settings),
            mis=s.mis,
            status=job.status,
            stopped_by=job.stopped_by,
            error=job.error,
            wall_time_s=job.wall_time_s,
            lease_s=s.lease_s,
            max_attempts=s.max_attempts,
            nodes=job.prefix,
            steps=job.prefix_steps,
            admitted=job.admitted,
            active_s=job.active_s,
            segment_start=job.segment_start,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            accelerator=s.accelerator,
            name=s.name,
            tags=tuple(s.tags),
        )

    def node_record(self, row: NodeRow) -> NodeRecord:
        """Snapshot of a node row."""
        values = {k: row.values[k] for k in NODE_RESULT_FIELDS if k in row.values}
        return NodeRecord(
            id=row.id,
            job_id=row.job_id,
            parent_id=row.parent_id,
            key=row.key,
            depth=row.depth,
            status=row.status,
            attempts=row.attempts,
            rank=row.rank,
            last_error=row.last_error,
            finished_at=row.finished_at,
            **values,
        )
