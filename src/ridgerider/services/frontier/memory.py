"""The in-memory frontier: the reference implementation, on :class:`InMemoryStorage` rows."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from typing_extensions import override

import ridgerider.services.frontier.sequencer as sequencer
from ridgerider.core.branch import Branch
from ridgerider.core.expand import Expansion
from ridgerider.schemas.enums import JobStatus, NodeStatus
from ridgerider.services.frontier.base import Frontier, Lease, owner_is_dead_here
from ridgerider.services.frontier.codec import (
    admits_no_more,
    child_rows,
    node_values,
    ridden_branch,
)
from ridgerider.services.frontier.sequencer import RankRow, SeqState, SeqStore
from ridgerider.services.storage.memory import InMemoryStorage
from ridgerider.services.storage.memrows import JobRow, NodeRow
from ridgerider.services.storage.models import utcnow
from ridgerider.services.storage.records import RideProgress

__all__ = ["MemoryFrontier"]


class _Store(SeqStore):
    """The sequencer's view of one job's rows."""

    def __init__(self, storage: InMemoryStorage, job_id: int) -> None:
        self.s, self.job_id = storage, job_id

    def _rows(self) -> list[NodeRow]:
        return [n for n in self.s.nodes.values() if n.job_id == self.job_id]

    @override
    def root_id(self) -> int:
        return self.s.keys[(self.job_id, "")]

    @override
    def done_from(self, start: int, stop: int) -> list[RankRow]:
        out = []
        for r in range(start, stop):
            node_id = self.s.ranks.get((self.job_id, r))
            n = None if node_id is None else self.s.nodes[node_id]
            if n is not None and n.status == NodeStatus.DONE:
                out.append(RankRow(r, n.id, n.values.get("steps") or 0))
        return out

    @override
    def children(self, parent_id: int) -> list[int]:
        return list(self.s.nodes[parent_id].children)

    @override
    def push_bfs(self, start: int, stop: int, first: int) -> int:
        rank = first
        for r in range(start, stop):
            for child in self.s.nodes[self.s.ranks[(self.job_id, r)]].children:
                self.s.nodes[child].seq = rank
                self.set_rank(child, rank)
                rank += 1
        return rank - first

    @override
    def set_order(self, rows: Sequence[tuple[int, int, int | None, int | None]]) -> None:
        for node_id, seq, rank, slot in rows:
            n = self.s.nodes[node_id]
            n.seq, n.slot = seq, slot
            if rank is not None:
                self.set_rank(node_id, rank)

    @override
    def pick(self, order: str) -> int:
        pushed = [n for n in self._rows() if n.seq is not None and n.rank is None]
        if order == "dfs":
            return max(pushed, key=lambda n: n.seq or 0).id
        inf = float("inf")
        return min(
            pushed, key=lambda n: (inf if n.branch_loss is None else n.branch_loss, n.seq)
        ).id

    @override
    def at_slot(self, slot: int) -> int:
        return next(n.id for n in self._rows() if n.slot == slot)

    @override
    def set_rank(self, node_id: int, rank: int) -> None:
        n = self.s.nodes[node_id]
        n.rank, n.slot = rank, None
        self.s.ranks[(self.job_id, rank)] = node_id

    @override
    def move_slot(self, node_id: int, slot: int) -> None:
        self.s.nodes[node_id].slot = slot


def seq_state(job: JobRow) -> SeqState:
    """The sequencer state of a job row."""
    return SeqState(
        order=job.settings["order"],
        seed=job.spec.seed,
        pushed=job.pushed,
        ranked=job.ranked,
        prefix=job.prefix,
        prefix_steps=job.prefix_steps,
        admitted=job.admitted,
        stopped_by=job.stopped_by,
        rng_state=job.rng_state,
        max_nodes=job.settings["max_nodes"],
        max_steps=job.settings["max_steps"],
        max_ride_steps=job.settings["max_ride_steps"],
    )


class MemoryFrontier(Frontier):
    """Claims, leases and the sequencer over an :class:`InMemoryStorage` (one lock)."""

    def __init__(self, storage: InMemoryStorage, *, lease_s: float | None = None) -> None:
        super().__init__()
        self.storage: InMemoryStorage = storage
        self.lease_s = lease_s

    @override
    def claim(
        self,
        worker: str,
        k: int = 1,
        *,
        job_id: int | None = None,
        lease_s: float | None = None,
        accelerator: str = "cpu",
    ) -> list[Lease]:
        s = self.storage
        with s.lock:
            now, token, out = s.clock(), uuid.uuid4().hex, []
            for job in sorted(s.jobs.values(), key=lambda j: j.id):
                if job.status != JobStatus.RUNNING or job_id not in (None, job.id):
                    continue
                if job.spec.accelerator != accelerator:
                    continue
                ttl = lease_s or self.lease_s or job.spec.lease_s
                for r in range(job.prefix, job.admitted):
                    n = s.nodes[s.ranks[(job.id, r)]]
                    if len(out) == k:
                        return out
                    if n.status != NodeStatus.WAITING:
                        continue
                    n.status, n.lease_owner, n.lease_token = NodeStatus.LEASED, worker, token
                    n.lease_expires, n.attempts = now + ttl, n.attempts + 1
                    branch = s.branch_of(n)
                    out.append(
                        Lease(job.id, n.id, token, worker, n.attempts, now + ttl, n.rank, branch)
                    )
            return out

    def _held(self, lease: Lease, now: float) -> NodeRow | None:
        n = self.storage.nodes.get(lease.node_id)
        if n is None or n.status != NodeStatus.LEASED or n.lease_token != lease.token:
            return None
        return n if (n.lease_expires or 0) > now else None

    @override
    def heartbeat(
        self,
        leases: Sequence[Lease],
        lease_s: float | None = None,
        progress: Mapping[int, RideProgress] | None = None,
    ) -> list[bool]:
        s = self.storage
        with s.lock:
            now, held = s.clock(), []
            for lease in leases:
                n = self._held(lease, now)
                if n is not None:
                    n.lease_expires = now + (
                        lease_s or self.lease_s or s.jobs[n.job_id].spec.lease_s
                    )
                    if progress is not None and n.id in progress:
                        n.ride_steps = progress[n.id].steps
                        n.ride_loss = progress[n.id].loss
                held.append(n is not None)
            return held

    @override
    def complete(self, lease: Lease, expansion: Expansion) -> bool:
        s = self.storage
        with s.lock:
            n = self._held(lease, s.clock())
            if n is None or s.jobs[n.job_id].status != JobStatus.RUNNING:
                return False
            n.values = node_values(expansion.node)
            n.branch_data = ridden_branch(lease.branch, n.values["theta_data"]) or n.branch_data
            n.status = NodeStatus.DONE
            n.lease_owner, n.lease_token, n.lease_expires = None, None, None
            n.finished_at = utcnow()
            self._insert(n.job_id, n.id, expansion.children, n.values["theta_data"])
            if expansion.node.is_solution:
                s.solution_ids.setdefault(n.job_id, []).append(n.id)
            self.advance(n.job_id)
            return True

    def _insert(
        self, job_id: int, parent_id: int, children: Sequence[Branch], theta: bytes | None = None
    ) -> int:
        rows = child_rows(job_id, parent_id, list(children), theta)
        job = self.storage.jobs[job_id]
        closed = admits_no_more(job.admitted, job.settings["max_nodes"], job.stopped_by)
        return sum(
            self.storage.insert_node(
                job_id,
                parent_id,
                r["key"],
                r["depth"],
                r["child_index"],
                r["branch_loss"],
                r["branch_head"] if closed and r["branch_head"] is not None else r["branch_data"],
            )
            for r in rows
        )

    @override
    def push(self, job_id: int, parent_id: int, branches: Sequence[Branch]) -> int:
        with self.storage.lock:
            return self._insert(job_id, parent_id, branches)

    @override
    def fail(self, lease: Lease, error: str) -> bool:
        s = self.storage
        with s.lock:
            n = self._held(lease, s.clock())
            if n is None:
                return False
            self._release(n, error)
            return True

    def _release(self, n: NodeRow, error: str) -> None:
        s = self.storage
        job = s.jobs[n.job_id]
        n.lease_owner, n.lease_token, n.lease_expires, n.last_error = None, None, None, error
        if n.attempts >= job.spec.max_attempts:
            n.status = NodeStatus.DEAD
            s.add_event(job.id, "dead_letter", {"node": n.id, "key": n.key, "error": error})
            if job.status == JobStatus.RUNNING:
                msg = f"branch {n.key or '(root)'} failed {n.attempts} times: {error}"
                s.apply_transition(job, JobStatus.FAILED, s.clock(), error=msg)
        else:
            n.status = NodeStatus.WAITING

    @override
    def reap(self) -> int:
        s = self.storage
        with s.lock:
            now = s.clock()
            expired = [
                n
                for n in s.nodes.values()
                if n.status == NodeStatus.LEASED and (n.lease_expires or 0) <= now
            ]
            for n in expired:
                self._release(n, "lease expired")
            return len(expired)

    @override
    def advance(self, job_id: int) -> None:
        s = self.storage
        with s.lock:
            job = s.jobs[job_id]
            if job.status != JobStatus.RUNNING:
                return
            st = seq_state(job)
            sequencer.advance(st, _Store(s, job_id))
            self._save(job, st)

    def _save(self, job: JobRow, st: SeqState) -> None:
        job.pushed, job.ranked, job.prefix = st.pushed, st.ranked, st.prefix
        job.prefix_steps, job.admitted, job.rng_state = st.prefix_steps, st.admitted, st.rng_state
        job.stopped_by = st.stopped_by
        if st.finished:
            self.storage.apply_transition(job, JobStatus.SUCCEEDED, self.storage.clock())

    @override
    def tick(self) -> None:
        s = self.storage
        with s.lock:
            now = s.clock()
            for job in list(s.jobs.values()):
                if job.status != JobStatus.RUNNING or job.wall_time_s is None or job.stopped_by:
                    continue
                if job.active_s + now - (job.segment_start or now) < job.wall_time_s:
                    continue
                st = seq_state(job)
                waiting = [
                    r
                    for r in range(job.prefix, job.admitted)
                    if s.nodes[s.ranks[(job.id, r)]].status == NodeStatus.WAITING
                ]
                sequencer.stop(st, "wall_time", waiting[0] if waiting else None)
                sequencer.advance(st, _Store(s, job.id))
                self._save(job, st)

    @override
    def release_orphans(self, job_id: int) -> int:
        s = self.storage
        with s.lock:
            now, count = s.clock(), 0
            for n in s.nodes.values():
                if (
                    n.job_id == job_id
                    and n.status == NodeStatus.LEASED
                    and owner_is_dead_here(n.lease_owner)
                ):
                    n.lease_expires, count = now, count + 1
        self.reap()
        return count
