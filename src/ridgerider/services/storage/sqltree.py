"""Reads of a job's search tree in the SQL storage: nodes, their blobs, solutions, rides.

Large reads are paginated by a cursor over an index: the tree by ``(job_id, rank)``, a job's
rows by id, so reading a job with 100k nodes costs one index range scan per page.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, Text, case, cast, func, select, text
from typing_extensions import override

from ridgerider.schemas.enums import NodeStatus
from ridgerider.services.storage.base import Storage
from ridgerider.services.storage.records import (
    TREE_COLUMNS,
    NodeRecord,
    Page,
    RideRecord,
    SolutionRecord,
)
from ridgerider.services.storage.session import Database
from ridgerider.services.storage.tables import (
    JOBS,
    NODES,
    SOLUTIONS,
    decode_branch,
    decode_tensor,
    load_blob,
)

if TYPE_CHECKING:  # torch: loaded where tensors are decoded, never by a listing
    from torch import Tensor

    from ridgerider.core.branch import Branch

__all__ = ["SQLTree"]

_NODE_COLS = [NODES.c[f.name] for f in fields(NodeRecord)]
"""The columns a :class:`NodeRecord` is read from (its fields, by name)."""
_LISTED_COLS = [c for c in _NODE_COLS if c.name != "trace"]
"""The same less ``trace`` (per-step losses: most of a row, decoded for nothing on a listing)."""
_TREE_COLS = [
    cast(NODES.c.metrics, Text) if name == "metrics" else NODES.c[name] for name in TREE_COLUMNS
]
"""``TREE_COLUMNS``, ``metrics`` as its JSON text (read as stored, not decoded)."""
_RANK = TREE_COLUMNS.index("rank")


def _node_record(row: Row[Any]) -> NodeRecord:
    return NodeRecord(**row._asdict())


class SQLTree(Storage):
    """The search-tree reads of :class:`~.sql.SQLStorage` (which opens ``db``)."""

    db: Database

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
        n = NODES.c
        cols = _NODE_COLS if trace else _LISTED_COLS
        stmt = select(*cols).where(n.job_id == job_id).limit(limit + 1)
        if tree:
            prefix = select(JOBS.c.prefix).where(JOBS.c.id == job_id).scalar_subquery()
            stmt = stmt.where(n.rank >= (cursor or 0), n.rank < prefix).order_by(n.rank)
        else:
            stmt = stmt.where(n.id > (cursor or 0)).order_by(n.id)
        with self.db.read() as conn:
            rows = [_node_record(r) for r in conn.execute(stmt)]
        if len(rows) <= limit:
            return Page(rows, None)
        last = rows[limit - 1]
        return Page(rows[:limit], (last.rank or 0) + 1 if tree else last.id)

    @override
    def tree_rows(
        self, job_id: int, *, cursor: int | None = None, limit: int = 1000
    ) -> Page[tuple[Any, ...]]:
        n = NODES.c
        prefix = select(JOBS.c.prefix).where(JOBS.c.id == job_id).scalar_subquery()
        stmt = (
            select(*_TREE_COLS)
            .where(n.job_id == job_id, n.rank >= (cursor or 0), n.rank < prefix)
            .order_by(n.rank)
            .limit(limit + 1)
        )
        with self.db.read() as conn:
            rows = [tuple(r) for r in conn.execute(stmt)]
        if len(rows) <= limit:
            return Page(rows, None)
        return Page(rows[:limit], (rows[limit - 1][_RANK] or 0) + 1)

    @override
    def get_node(self, node_id: int) -> NodeRecord | None:
        with self.db.session(write=False) as s:
            row = s.connection().execute(select(*_NODE_COLS).where(NODES.c.id == node_id)).first()
        return None if row is None else _node_record(row)

    @override
    def node_theta(self, node_id: int) -> Tensor | None:
        n = NODES.c
        with self.db.session(write=False) as s:
            conn = s.connection()
            row = conn.execute(
                select(n.theta_data, n.theta_ref, n.trace).where(n.id == node_id)
            ).first()
            if row is None or row.trace is None:
                return None
            data = load_blob(conn, row.theta_data, row.theta_ref)
        return None if data is None else decode_tensor(data, row.trace["dtype"])

    @override
    def node_branch(self, node_id: int) -> Branch | None:
        n = NODES.c
        parent = NODES.alias("parent")
        with self.db.session(write=False) as s:
            conn = s.connection()
            # A child's θ is its parent's end θ; a done root's, its own (``ridden_branch``).
            own = n.parent_id.is_(None)
            row = conn.execute(
                select(
                    n.branch_data,
                    n.branch_ref,
                    case((own, n.theta_data), else_=parent.c.theta_data).label("theta_data"),
                    case((own, n.theta_ref), else_=parent.c.theta_ref).label("theta_ref"),
                )
                .outerjoin(parent, parent.c.id == n.parent_id)
                .where(n.id == node_id)
            ).first()
            if row is None:
                return None
            data = load_blob(conn, row.branch_data, row.branch_ref)
            theta = load_blob(conn, row.theta_data, row.theta_ref)
        return None if data is None else decode_branch(data, theta)

    @override
    def solutions(self, job_id: int) -> list[SolutionRecord]:
        s_, n = SOLUTIONS.c, NODES.c
        prefix = select(JOBS.c.prefix).where(JOBS.c.id == job_id).scalar_subquery()
        stmt = (
            select(s_.node_id, s_.key, n.rank, s_.solution_key, s_.loss, s_.metrics)
            .join(NODES, n.id == s_.node_id)
            .where(s_.job_id == job_id, n.rank < prefix)
            .order_by(n.rank)
        )
        with self.db.session(write=False) as s:
            return [SolutionRecord(**r._asdict()) for r in s.connection().execute(stmt)]

    @override
    def rides(self, job_id: int) -> list[RideRecord]:
        n = NODES.c
        cols = (n.id, n.key, n.depth, n.lease_owner, n.attempts, n.ride_steps, n.ride_loss)
        stmt = (
            select(*cols, n.branch_loss)
            .where(n.job_id == job_id, n.status == NodeStatus.LEASED)
            .order_by(n.id)
        )
        with self.db.session(write=False) as s:
            return [RideRecord.of_row(r) for r in s.connection().execute(stmt)]

    @override
    def branch_counts(self) -> dict[tuple[str, str], int]:
        n, j = NODES.c, JOBS.c
        out: dict[tuple[str, str], int] = {}
        with self.db.session(write=False) as s:
            conn = s.connection()
            for status in (NodeStatus.WAITING, NodeStatus.LEASED):
                # the literal condition of the partial index: only those rows are read
                stmt = (
                    select(j.status, func.count())
                    .select_from(NODES.join(JOBS, j.id == n.job_id))
                    .where(text(f"nodes.status = '{status.value}'"))
                    .group_by(j.status)
                )
                for job_status, count in conn.execute(stmt):
                    out[(job_status, status.value)] = int(count)
        return out

    @override
    def count_nodes(self, job_id: int) -> dict[str, int]:
        n = NODES.c
        stmt = select(n.status, func.count()).where(n.job_id == job_id).group_by(n.status)
        with self.db.session(write=False) as s:
            return {status: int(c) for status, c in s.connection().execute(stmt)}
