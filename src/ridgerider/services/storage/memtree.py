"""Reads of a job's search tree in the in-memory storage: nodes, solutions, rides."""

from __future__ import annotations

from typing import TYPE_CHECKING

from typing_extensions import override

from ridgerider.schemas.enums import NodeStatus
from ridgerider.services.storage.memrows import MemoryTables
from ridgerider.services.storage.records import NodeRecord, Page, RideRecord, SolutionRecord
from ridgerider.services.storage.tables import decode_tensor

if TYPE_CHECKING:  # torch: loaded where tensors are decoded, never by a listing
    from torch import Tensor

    from ridgerider.core.branch import Branch

__all__ = ["MemoryTree"]


class MemoryTree(MemoryTables):
    """The search-tree reads of :class:`~.memory.InMemoryStorage`."""

    @override
    def list_nodes(
        self,
        job_id: int,
        *,
        cursor: int | None = None,
        limit: int = 1000,
        tree: bool = True,
        trace: bool = True,
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
            return decode_tensor(row.values["theta_data"], row.values["trace"]["dtype"])

    @override
    def node_branch(self, node_id: int) -> Branch | None:
        with self.lock:
            row = self.nodes.get(node_id)
            return None if row is None else self.branch_of(row)

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
