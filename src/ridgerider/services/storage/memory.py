"""In-memory storage: the reference implementation of :class:`~.base.Storage` (one process).

Rows are plain dataclasses guarded by one lock; :class:`~..frontier.memory.MemoryFrontier`
works on them directly. Nothing survives the process.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from torch import Tensor
from typing_extensions import override

from ridgerider.core.branch import Branch, tensor_from_bytes
from ridgerider.schemas.enums import JobStatus, NodeStatus
from ridgerider.services.storage.base import (
    FINAL,
    TRANSITIONS,
    Storage,
    budget_event,
    extended_budgets,
    hash_token,
)
from ridgerider.services.storage.models import utcnow
from ridgerider.services.storage.records import (
    NODE_RESULT_FIELDS,
    DuplicateJobError,
    EventRecord,
    JobRecord,
    JobSpec,
    NodeRecord,
    Page,
    RideRecord,
    SolutionRecord,
    TokenRecord,
    UserRecord,
)

__all__ = ["InMemoryStorage", "JobRow", "NodeRow"]


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


class InMemoryStorage(Storage):
    """Everything in dictionaries; ``lock`` guards every read and write."""

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

    # -- users and tokens ------------------------------------------------------------------

    @override
    def create_user(self, name: str, *, is_admin: bool = False) -> UserRecord:
        with self.lock:
            if any(u.name == name for u in self._users.values()):
                raise ValueError(f"user {name!r} exists")
            user = UserRecord(self.next_id(), name, is_admin, utcnow())
            self._users[user.id] = user
            return user

    @override
    def get_user(self, user_id: int) -> UserRecord | None:
        return self._users.get(user_id)

    @override
    def get_user_by_name(self, name: str) -> UserRecord | None:
        with self.lock:
            return next((u for u in self._users.values() if u.name == name), None)

    @override
    def find_token(self, secret: str) -> TokenRecord | None:
        digest = hash_token(secret)
        with self.lock:
            return next((rec for rec, h in self._tokens.values() if h == digest), None)

    @override
    def _insert_token(
        self, user_id: int, name: str, token_hash: str, prefix: str, expires_at: datetime | None
    ) -> TokenRecord:
        with self.lock:
            if user_id not in self._users:
                raise ValueError(f"no user {user_id}")
            rec = TokenRecord(self.next_id(), user_id, name, prefix, utcnow(), expires_at, None)
            self._tokens[rec.id] = (rec, token_hash)
            return rec

    @override
    def verify_token(self, secret: str) -> UserRecord | None:
        digest, now = hash_token(secret), utcnow()
        with self.lock:
            for rec, stored in self._tokens.values():
                live = rec.revoked_at is None and (rec.expires_at is None or rec.expires_at > now)
                if stored == digest and live:
                    return self._users.get(rec.user_id)
        return None

    @override
    def revoke_token(self, token_id: int) -> bool:
        with self.lock:
            found = self._tokens.get(token_id)
            if found is None or found[0].revoked_at is not None:
                return False
            rec, digest = found
            self._tokens[token_id] = (
                TokenRecord(**{**rec.__dict__, "revoked_at": utcnow()}),
                digest,
            )
            return True

    # -- jobs ------------------------------------------------------------------------------

    @override
    def create_job(self, spec: JobSpec, root: Branch) -> JobRecord:
        with self.lock:
            if spec.idempotency_key is not None and self.find_job(
                spec.owner_id, spec.idempotency_key
            ):
                raise DuplicateJobError(spec.owner_id, spec.idempotency_key)
            job = JobRow(self.next_id(), spec, dict(spec.settings), spec.wall_time_s)
            job.active_s = spec.elapsed_s
            self.jobs[job.id] = job
            self.insert_node(job.id, None, root.key, root.depth, 0, root.loss, root.to_bytes())
            self._event(job.id, "created", {"problem": spec.problem})
            return self.job_record(job)

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
        )

    @override
    def get_job(self, job_id: int) -> JobRecord | None:
        with self.lock:
            job = self.jobs.get(job_id)
            return None if job is None else self.job_record(job)

    @override
    def find_job(self, owner_id: int | None, idempotency_key: str) -> JobRecord | None:
        with self.lock:
            for job in self.jobs.values():
                if job.spec.owner_id == owner_id and job.spec.idempotency_key == idempotency_key:
                    return self.job_record(job)
        return None

    @override
    def list_jobs(
        self,
        *,
        owner_id: int | None = None,
        status: str | None = None,
        cursor: int | None = None,
        limit: int = 100,
    ) -> Page[JobRecord]:
        with self.lock:
            rows = [
                j
                for j in sorted(self.jobs.values(), key=lambda j: -j.id)
                if (owner_id is None or j.spec.owner_id == owner_id)
                and (status is None or j.status == status)
                and (cursor is None or j.id < cursor)
            ]
            page = [self.job_record(j) for j in rows[:limit]]
        return Page(page, page[-1].id if len(rows) > limit else None)

    @override
    def transition(
        self, job_id: int, to: str, *, error: str | None = None, stopped_by: str | None = None
    ) -> bool:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None or job.status not in TRANSITIONS[to]:
                return False
            self.apply_transition(job, to, self.clock(), error=error, stopped_by=stopped_by)
            return True

    def apply_transition(
        self,
        job: JobRow,
        to: str,
        now: float,
        *,
        error: str | None = None,
        stopped_by: str | None = None,
    ) -> None:
        """Change a job's status and its time bookkeeping (the caller checked the CAS)."""
        if job.status == JobStatus.RUNNING and job.segment_start is not None:
            job.active_s += max(now - job.segment_start, 0.0)
            job.segment_start = None
        if to == JobStatus.RUNNING:
            job.segment_start = now
            job.started_at = job.started_at or utcnow()
            job.finished_at = None
            job.error = None
        if to in FINAL:
            job.finished_at = utcnow()
        if to == JobStatus.FAILED:
            job.error = error
        if stopped_by is not None:
            job.stopped_by = stopped_by
        self._event(job.id, to, {"error": error} if error else {})
        job.status = to

    @override
    def extend_job(
        self,
        job_id: int,
        *,
        max_nodes: int | None = None,
        max_steps: int | None = None,
        wall_time_s: float | None = None,
    ) -> bool:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return False
            job.settings, job.wall_time_s = extended_budgets(
                job.settings, job.wall_time_s, max_nodes, max_steps, wall_time_s
            )
            self._event(job_id, "extended", budget_event(max_nodes, max_steps, wall_time_s))
            if job.status == JobStatus.SUCCEEDED and job.stopped_by != "exhausted":
                self.apply_transition(job, JobStatus.RUNNING, self.clock())
                job.stopped_by = None
            elif job.status == JobStatus.RUNNING and job.stopped_by not in (None, "exhausted"):
                job.stopped_by = None
            return job.status == JobStatus.RUNNING

    @override
    def requeue_dead(self, job_id: int) -> int:
        with self.lock:
            dead = [
                n for n in self.nodes.values() if n.job_id == job_id and n.status == NodeStatus.DEAD
            ]
            for n in dead:
                n.status, n.attempts = NodeStatus.WAITING, 0
            return len(dead)

    # -- events ----------------------------------------------------------------------------

    def _event(self, job_id: int, kind: str, data: dict[str, Any]) -> None:
        self._events.setdefault(job_id, []).append(
            EventRecord(self.next_id(), job_id, utcnow(), kind, data)
        )

    @override
    def add_event(self, job_id: int, kind: str, data: dict[str, Any] | None = None) -> None:
        with self.lock:
            self._event(job_id, kind, data or {})

    @override
    def list_events(
        self, job_id: int, *, cursor: int | None = None, limit: int = 100
    ) -> Page[EventRecord]:
        with self.lock:
            rows = [e for e in self._events.get(job_id, []) if cursor is None or e.id > cursor]
        return Page(rows[:limit], rows[limit - 1].id if len(rows) > limit else None)

    # -- the tree --------------------------------------------------------------------------

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

    @override
    def list_nodes(
        self, job_id: int, *, cursor: int | None = None, limit: int = 1000, tree: bool = True
    ) -> Page[NodeRecord]:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return Page([], None)
            if tree:
                start = 0 if cursor is None else cursor
                stop = min(job.prefix, start + limit)
                rows = [self.nodes[self.ranks[(job_id, r)]] for r in range(start, stop)]
                nxt = stop if stop < job.prefix else None
            else:
                ids = sorted(
                    i for i, n in self.nodes.items() if n.job_id == job_id and i > (cursor or 0)
                )
                rows = [self.nodes[i] for i in ids[:limit]]
                nxt = rows[-1].id if len(ids) > limit else None
            return Page([self.node_record(r) for r in rows], nxt)

    @override
    def get_node(self, node_id: int) -> NodeRecord | None:
        with self.lock:
            row = self.nodes.get(node_id)
            return None if row is None else self.node_record(row)

    @override
    def node_theta(self, node_id: int) -> Tensor | None:
        with self.lock:
            row = self.nodes.get(node_id)
            if row is None or "theta_data" not in row.values:
                return None
            return tensor_from_bytes(row.values["theta_data"], row.values["trace"]["dtype"])

    @override
    def node_branch(self, node_id: int) -> Branch | None:
        with self.lock:
            row = self.nodes.get(node_id)
            return None if row is None else Branch.from_bytes(row.branch_data)

    @override
    def solutions(self, job_id: int) -> list[SolutionRecord]:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return []
            rows = [self.nodes[i] for i in self.solution_ids.get(job_id, [])]
            tree = [r for r in rows if r.rank is not None and r.rank < job.prefix]
            return [
                SolutionRecord(
                    r.id,
                    r.key,
                    r.rank,
                    r.values["solution_key"],
                    r.values["loss"],
                    r.values["metrics"],
                )
                for r in sorted(tree, key=lambda r: r.rank or 0)
            ]

    @override
    def rides(self, job_id: int) -> list[RideRecord]:
        with self.lock:
            return [
                RideRecord.of_row(n)
                for n in sorted(self.nodes.values(), key=lambda n: n.id)
                if n.job_id == job_id and n.status == NodeStatus.LEASED
            ]

    @override
    def count_nodes(self, job_id: int) -> dict[str, int]:
        with self.lock:
            counts: dict[str, int] = {}
            for n in self.nodes.values():
                if n.job_id == job_id:
                    counts[n.status] = counts.get(n.status, 0) + 1
            return counts
