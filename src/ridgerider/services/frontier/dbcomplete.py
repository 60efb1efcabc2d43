"""Completions on the database frontier: ridden nodes, their children and solutions.

A completion touches only its own rows (the node, its children, its solution), fenced by the
node's lease, and never the job row; when the prefix waits for a rank it recorded, it runs the
sequencer afterwards. On PostgreSQL a batch is one statement (:mod:`.pgpath`); SQLite, and a
batch with a blob too large to inline or a branch read from an artifact, record node by node.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select
from typing_extensions import override

from ridgerider.core.branch import Branch, Node
from ridgerider.core.expand import Expansion
from ridgerider.services.frontier.base import Lease
from ridgerider.services.frontier.codec import (
    admits_no_more,
    child_rows,
    node_values,
    ridden_branch,
)
from ridgerider.services.frontier.dbsequencer import DatabaseSequencer
from ridgerider.services.frontier.pgpath import COMPLETE, PREFIXES, complete_params, run
from ridgerider.services.frontier.statements import (
    CHILD_COLS,
    JSON_COLS,
    RESULT_COLS,
    json_value,
)
from ridgerider.services.storage.tables import (
    BRANCH_INLINE_LIMIT,
    JOBS,
    drop_unused,
    store_blob,
)

__all__ = ["DatabaseCompletion"]


def _first_of_each(done: Sequence[tuple[Lease, Expansion]]) -> list[tuple[Lease, Expansion]]:
    """A batch without repeated leases (a lease listed twice is recorded once, the first time)."""
    seen: set[tuple[int, str]] = set()
    out = []
    for lease, expansion in done:
        if (lease.node_id, lease.token) not in seen:
            seen.add((lease.node_id, lease.token))
            out.append((lease, expansion))
    return out


class DatabaseCompletion(DatabaseSequencer):
    """Completing and pushing branches on the database frontier (claims: its subclass)."""

    @override
    def complete(self, lease: Lease, expansion: Expansion) -> bool:
        return self.complete_many([(lease, expansion)])[0]

    @override
    def complete_many(self, done: Sequence[tuple[Lease, Expansion]]) -> list[bool]:
        if not done:
            return []
        orders = self._orders({lease.job_id for lease, _ in done})
        if self.sql.pg and (params := complete_params(_first_of_each(done), orders)) is not None:
            return self._complete_pg(done, params)
        ok: list[bool] = []
        ranks: dict[int, set[int]] = {}  # job → ranks recorded here
        with self.db.session() as s:
            conn = s.connection()
            kids: list[dict[str, Any]] = []
            for lease, expansion in done:
                values = node_values(expansion.node)
                theta = values["theta_data"]
                row = self._record(conn, lease, expansion.node, values)
                ok.append(row is not None)
                if row is not None:
                    order = orders[lease.job_id]
                    kids += child_rows(
                        lease.job_id, lease.node_id, expansion.children, theta, order
                    )
                    if row.rank is not None:
                        ranks.setdefault(lease.job_id, set()).add(row.rank)
            self._insert_rows(conn, kids)
            # A ridden branch read from an artifact kept only its header (``_record``).
            drop_unused(conn, {lease.branch_ref for lease, _ in done if lease.branch_ref})
        # The job row is not locked above: a completion never waits for the sequencer. If the
        # prefix now waits for one of our ranks, sequence; if another worker holds the
        # sequencer, it sees our commit in its check after committing (see _after).
        for job_id, mine in ranks.items():
            if self._prefix(job_id) in mine:
                self._sequence(job_id, skip_locked=True)
        return ok

    def _complete_pg(
        self, done: Sequence[tuple[Lease, Expansion]], params: dict[str, str]
    ) -> list[bool]:
        """``complete_many`` on PostgreSQL: one statement, committed, then the prefixes read.

        Two round trips; the prefixes are read after the commit, as the per-statement path
        does, so a rank the prefix waits for is sequenced by its worker or by the sequencer's
        check after its own commit (see :meth:`_after`).
        """
        jobs = sorted({lease.job_id for lease, _ in done})
        with self.db.pipeline() as pipe:
            cur = run(pipe, COMPLETE, params)  # one statement: its own (durable) transaction
            pipe.sync()
            pre = run(pipe, PREFIXES, {"jobs": jobs})
        recorded = {(r[0], r[1]): (r[2], r[3]) for r in cur.fetchall()}
        prefix = dict(pre.fetchall())
        ranks: dict[int, set[int]] = {}
        for job_id, rank in recorded.values():
            if rank is not None:
                ranks.setdefault(job_id, set()).add(rank)
        ok: list[bool] = []  # a lease listed twice is recorded once
        for lease, _ in done:
            ok.append(recorded.pop((lease.node_id, lease.token), None) is not None)
        for job_id, mine in ranks.items():
            if prefix.get(job_id) in mine:
                self._sequence(job_id, skip_locked=True)
        return ok

    def _record(self, conn: Connection, lease: Lease, node: Node, values: dict[str, Any]) -> Any:
        """Write a ridden node (``values``: ``node_values(node)``) if its lease is still ours.

        Returns ``(rank, prefix)``, or ``None`` if the lease is not ours any more.
        """
        values = dict(values)
        ridden = ridden_branch(lease.branch, values["theta_data"])
        values["theta_data"], values["theta_ref"] = store_blob(conn, values["theta_data"])
        for col in JSON_COLS:
            values[col] = json.dumps(values[col])
        params = {f"v_{c}": values[c] for c in RESULT_COLS}
        params["v_branch"] = ridden
        row = self.sql.complete(conn, node=lease.node_id, token=lease.token, **params).first()
        if row is not None and node.is_solution:
            self.sql.solution(
                conn,
                job_id_0=lease.job_id,
                node_id_0=lease.node_id,
                key_0=lease.branch.key,
                solution_key_0=node.solution_key,
                loss_0=node.loss,
                metrics_0=json.dumps(node.metrics),
            )
        return row

    def _insert(
        self, conn: Connection, job_id: int, parent_id: int, kids: Sequence[Branch], order: str
    ) -> int:
        """Insert child branches, skipping fingerprints the job already has."""
        return self._insert_rows(conn, child_rows(job_id, parent_id, list(kids), order=order))

    def _insert_rows(self, conn: Connection, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        closed = self._closed(conn, {r["job_id"] for r in rows if r["branch_head"] is not None})
        params: list[dict[str, Any]] = []
        for r in rows:
            head = r.pop("branch_head")
            data = head if head is not None and r["job_id"] in closed else r["branch_data"]
            limit, job = BRANCH_INLINE_LIMIT, r["job_id"]  # the job's alone (store_blob)
            r["branch_data"], r["branch_ref"] = store_blob(conn, data, limit, owner=job)
            params.append({f"{c}_0": r[c] for c in CHILD_COLS})
        return self.sql.child.many(conn, params)

    def _closed(self, conn: Connection, jobs: set[int]) -> set[int]:
        """The jobs among ``jobs`` whose budgets admit no further rank (``admits_no_more``)."""
        if not jobs:
            return set()
        j = JOBS.c
        stmt = select(j.id, j.admitted, j.settings, j.stopped_by).where(j.id.in_(sorted(jobs)))
        return {
            r.id
            for r in conn.execute(stmt)
            if admits_no_more(r.admitted, json_value(r.settings)["max_nodes"], r.stopped_by)
        }

    @override
    def push(self, job_id: int, parent_id: int, branches: Sequence[Branch]) -> int:
        order = self._orders({job_id})[job_id]
        with self.db.session() as s:
            return self._insert(s.connection(), job_id, parent_id, branches, order)
