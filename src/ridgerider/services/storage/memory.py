"""In-memory storage: the reference implementation of :class:`~.base.Storage` (one process).

Rows are plain dataclasses guarded by one lock; :class:`~..frontier.memory.MemoryFrontier`
works on them directly. Nothing survives the process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from ridgerider.schemas.enums import JobStatus, NodeStatus
from ridgerider.services.storage.base import (
    FINAL,
    TRANSITIONS,
    budget_event,
    extended_budgets,
)
from ridgerider.services.storage.memaccounts import MemoryAccounts
from ridgerider.services.storage.memrows import JobRow, NodeRow
from ridgerider.services.storage.memtree import MemoryTree
from ridgerider.services.storage.models import utcnow
from ridgerider.services.storage.records import (
    DuplicateJobError,
    EventRecord,
    JobRecord,
    JobSpec,
    Page,
)

if TYPE_CHECKING:  # torch: loaded where tensors are decoded, never by a listing
    from ridgerider.core.branch import Branch

__all__ = ["InMemoryStorage", "JobRow", "NodeRow"]


class InMemoryStorage(MemoryAccounts, MemoryTree):
    """Everything in dictionaries (:class:`~.memrows.MemoryTables`); ``lock`` guards them all.

    Users and tokens come from :class:`~.memaccounts.MemoryAccounts`, the tree's reads from
    :class:`~.memtree.MemoryTree`; jobs and events are here.
    """

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

    @override
    def get_job(self, job_id: int) -> JobRecord | None:
        with self.lock:
            job = self.jobs.get(job_id)
            return None if job is None else self.job_record(job)

    @override
    def set_mis(self, job_id: int, mis: dict[str, Any]) -> None:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is not None:
                job.spec = dataclasses.replace(job.spec, mis=dict(mis))

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
        name: str | None = None,
        tag: str | None = None,
        problem: str | None = None,
    ) -> Page[JobRecord]:
        def wanted(j: JobRow) -> bool:
            s = j.spec
            return (
                (owner_id is None or s.owner_id == owner_id)
                and (status is None or j.status == status)
                and (cursor is None or j.id < cursor)
                and (problem is None or s.problem == problem)
                and (tag is None or tag in s.tags)
                and (name is None or (s.name is not None and name.lower() in s.name.lower()))
            )

        with self.lock:
            rows = [j for j in sorted(self.jobs.values(), key=lambda j: -j.id) if wanted(j)]
            page = [self.job_record(j) for j in rows[:limit]]
        return Page(page, page[-1].id if len(rows) > limit else None)

    @override
    def count_solutions(self, job_ids: Iterable[int]) -> dict[int, int]:
        with self.lock:
            return {i: len(self.solution_ids.get(i, ())) for i in job_ids}

    @override
    def delete_job(self, job_id: int) -> bool:
        with self.lock:
            if self.jobs.pop(job_id, None) is None:
                return False
            for row in [n for n in self.nodes.values() if n.job_id == job_id]:
                del self.nodes[row.id]
                self.keys.pop((job_id, row.key), None)
                if row.rank is not None:
                    self.ranks.pop((job_id, row.rank), None)
            self.solution_ids.pop(job_id, None)
            self._events.pop(job_id, None)
            return True

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
        if to == JobStatus.SUCCEEDED:
            self.compact(job.id)

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
