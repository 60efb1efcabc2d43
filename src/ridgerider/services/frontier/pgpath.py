"""PostgreSQL's hot path: a claim or a batch of completions in one or two round trips.

The frontier's cycle (claim a batch, complete it, sometimes run the sequencer) cost one wait
for the server per statement, and psycopg about as much client CPU per statement again. On
PostgreSQL a claim is one explicit transaction sent in psycopg's pipeline mode (``BEGIN; …;
COMMIT`` go out together, the results come back together), and a batch of completions is one
statement committed on its own: the fenced ``UPDATE`` of every ridden node, the idempotent
insert of the children of the nodes it updated, and the solutions among them, as
data-modifying CTEs over one JSON document, so one statement serves every batch size.
Semantics are those of the per-statement path that SQLite uses: each node is fenced by its own
lease token, a refused node writes nothing (nor do its children), children skip keys the job
already has.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.dialects import postgresql

from ridgerider.core.expand import Expansion
from ridgerider.schemas.enums import JobStatus, NodeStatus
from ridgerider.services.frontier.base import Lease
from ridgerider.services.frontier.codec import child_rows, node_values, ridden_branch
from ridgerider.services.frontier.statements import Compiled
from ridgerider.services.storage.records import NODE_RESULT_TYPES
from ridgerider.services.storage.session import Pipe, db_now
from ridgerider.services.storage.tables import BRANCH_INLINE_LIMIT, INLINE_LIMIT

__all__ = [
    "ASYNC",
    "COMPLETE",
    "PREFIXES",
    "complete_params",
    "run",
]

ASYNC = "SET LOCAL synchronous_commit TO OFF"
"""Coordination state the frontier can re-derive commits without waiting for the WAL flush."""

_NOW = str(db_now().compile(dialect=postgresql.dialect()))

_PG_TYPES = {float: "float8", int: "int8", str: "text", bool: "bool", dict: "jsonb"}
"""The PostgreSQL type that reads each Python type of a result field from the batch's JSON."""
_RESULT = tuple((c, _PG_TYPES[t]) for c, t in NODE_RESULT_TYPES.items())
"""(column, type) of a ridden node's results (``NodeResult``), as read from the batch's JSON."""
_NODE = (
    ("id", "int8"), ("token", "text"), ("bkey", "text"), *_RESULT, ("theta", "text"),
    ("branch", "text"),
)  # fmt: skip
_CHILD = (
    ("parent_id", "int8"), ("key", "text"), ("depth", "int8"), ("child_index", "int8"),
    ("branch_loss", "float8"), ("data", "text"), ("head", "text"), ("spec", "text"),
)  # fmt: skip
_FLOATS = tuple(c for c, t in _RESULT if t == "float8")


def _records(param: str, cols: Sequence[tuple[str, str]], alias: str) -> str:
    types = ", ".join(f"{c} {t}" for c, t in cols)
    return f"json_to_recordset(%({param})s::json) AS {alias}({types})"


COMPLETE = f"""
WITH done AS (
    UPDATE nodes AS n SET
        status = '{NodeStatus.DONE.value}',
        lease_owner = NULL, lease_token = NULL, lease_expires = NULL, finished_at = now(),
        {", ".join(f"{c} = v.{c}" for c, _ in _RESULT)},
        theta_data = decode(v.theta, 'hex'), theta_ref = NULL,
        branch_data = CASE WHEN n.branch_ref IS NULL
                           THEN coalesce(decode(v.branch, 'hex'), n.branch_data)
                           ELSE n.branch_data END
    FROM {_records("nodes", _NODE, "v")}
    WHERE n.id = v.id AND n.status = '{NodeStatus.LEASED.value}' AND n.lease_token = v.token
        AND n.lease_expires > {_NOW}
        AND EXISTS (SELECT 1 FROM jobs
                    WHERE jobs.id = n.job_id AND jobs.status = '{JobStatus.RUNNING.value}')
    RETURNING n.id, v.token, n.job_id, n.rank,
        v.bkey, v.is_solution, v.solution_key, v.loss, v.metrics
), kids AS (
    INSERT INTO nodes (job_id, parent_id, key, depth, child_index, branch_loss, branch_data,
                       branch_ref, spec, status, attempts, created_at)
    SELECT done.job_id, c.parent_id, c.key, c.depth, c.child_index, c.branch_loss,
           decode(CASE WHEN c.head IS NOT NULL AND (j.stopped_by IS NOT NULL
                        OR j.admitted >= (j.settings ->> 'max_nodes')::int8)
                  THEN c.head ELSE c.data END, 'hex'),
           NULL, decode(c.spec, 'hex'), '{NodeStatus.WAITING.value}', 0, now()
    FROM {_records("children", _CHILD, "c")} JOIN done ON done.id = c.parent_id
        JOIN jobs AS j ON j.id = done.job_id
    ON CONFLICT (job_id, key) DO NOTHING
), sols AS (
    INSERT INTO solutions (job_id, node_id, key, solution_key, loss, metrics, created_at)
    SELECT job_id, id, bkey, solution_key, loss, metrics, now() FROM done WHERE is_solution
    ON CONFLICT (job_id, key) DO NOTHING
)
SELECT id, token, job_id, rank FROM done
"""
"""Complete a batch: ridden nodes fenced by their leases, their children, their solutions.

The batch travels as two JSON documents (one encode in C, one parse on the server: cheaper
than 26 typed arrays), blobs as hex, non-finite floats as the strings PostgreSQL reads.
"""

PREFIXES = "SELECT id, prefix FROM jobs WHERE id = ANY(%(jobs)s::int8[])"
"""The prefix rank of some jobs (read after a completion commits)."""


def _float(x: float | None) -> float | str | None:
    """JSON has no NaN or infinities; ``float8`` reads them from these strings."""
    if x is None or math.isfinite(x):
        return x
    return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")


def complete_params(
    done: Sequence[tuple[Lease, Expansion]], orders: Mapping[int, str]
) -> dict[str, str] | None:
    """The parameters of :data:`COMPLETE` for a batch; ``None`` if a blob is (or was) too large.

    ``orders``: each job's search order (its children's speculation keys). (Large blobs go to
    the artifact store, and a branch read from one is dropped from it: the per-statement path
    handles those batches.)
    """
    nodes: list[dict[str, Any]] = []
    kids: list[dict[str, Any]] = []
    for lease, expansion in done:
        values = node_values(expansion.node)
        theta = values.pop("theta_data")
        order = orders[lease.job_id]
        rows = child_rows(lease.job_id, lease.node_id, expansion.children, theta, order)
        big = any(len(r["branch_data"]) > BRANCH_INLINE_LIMIT for r in rows)
        if len(theta) > INLINE_LIMIT or big or lease.branch_ref is not None:
            return None
        for c in _FLOATS:
            values[c] = _float(values[c])
        values |= {"id": lease.node_id, "token": lease.token, "bkey": lease.branch.key}
        values["theta"] = theta.hex()
        branch = ridden_branch(lease.branch, theta)
        values["branch"] = None if branch is None else branch.hex()
        nodes.append(values)
        for r in rows:
            kids.append(
                {
                    "parent_id": r["parent_id"],
                    "key": r["key"],
                    "depth": r["depth"],
                    "child_index": r["child_index"],
                    "branch_loss": _float(r["branch_loss"]),
                    "data": r["branch_data"].hex(),
                    "head": None if r["branch_head"] is None else r["branch_head"].hex(),
                    "spec": None if r["spec"] is None else r["spec"].hex(),
                }
            )
    return {"nodes": json.dumps(nodes), "children": json.dumps(kids)}


def run(pipe: Pipe, stmt: Compiled | str, params: dict[str, Any] | None = None) -> Any:
    """Queue a statement on a pipeline; its cursor (read it after a sync)."""
    if isinstance(stmt, Compiled):
        return pipe.execute(stmt.sql, stmt.defaults | (params or {}))
    return pipe.execute(stmt, params)
