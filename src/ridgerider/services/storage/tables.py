"""Core ``Table`` handles of the models (hot paths use Core statements, not ORM units of work)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Table, delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ridgerider.services.storage.models import (
    ApiToken,
    Artifact,
    Job,
    JobEvent,
    Node,
    Solution,
    User,
    utcnow,
)

if TYPE_CHECKING:  # torch: imported by the decoders below when they run, never by a listing
    from torch import Tensor

    from ridgerider.core.branch import Branch

__all__ = [
    "ARTIFACTS",
    "BRANCH_INLINE_LIMIT",
    "EVENTS",
    "INLINE_LIMIT",
    "JOBS",
    "NODES",
    "SOLUTIONS",
    "TOKENS",
    "USERS",
    "decode_branch",
    "decode_tensor",
    "drop_unused",
    "insert_ignore",
    "load_blob",
    "store_blob",
]

USERS = cast(Table, User.__table__)
TOKENS = cast(Table, ApiToken.__table__)
JOBS = cast(Table, Job.__table__)
NODES = cast(Table, Node.__table__)
SOLUTIONS = cast(Table, Solution.__table__)
EVENTS = cast(Table, JobEvent.__table__)
ARTIFACTS = cast(Table, Artifact.__table__)

INLINE_LIMIT = 1 << 20
"""Blobs larger than this (bytes) go to the artifact store and rows keep their SHA-256."""

BRANCH_INLINE_LIMIT = 1 << 16
"""A child branch's record larger than this goes to the artifact store (its ridge: 8 bytes a
parameter, so problems of more than ~8,000 parameters, digits-mlp's 26,122 among them).

Such a record dies young: it is dropped when its branch is ridden (the row keeps its header)
or when the job ends (compaction). Inline, its TOAST chunks die among the live θs of
``nodes`` and PostgreSQL never gives their pages back (only ``VACUUM FULL``, which locks the
table, would); in ``artifacts`` they die together, and a ``VACUUM`` truncates the emptied
tail of the table (``frontier.pgcare.vacuum_artifacts``): a finished 8-node digits job
left 2.3 θ a node with its ridges inline, 1.4 θ with them here. θs stay inline below
:data:`INLINE_LIMIT`: they live as long as their node."""


def insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]], *keys: str) -> int:
    """Insert rows, skipping those that collide on the unique ``keys``; returns rows inserted."""
    if not rows:
        return 0
    ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = ins(table).values(rows).on_conflict_do_nothing(index_elements=list(keys))
    first = next(iter(table.primary_key.columns))
    return len(conn.execute(stmt.returning(first)).all())  # rowcount is unreliable here


def store_blob(
    conn: Connection, data: bytes, limit: int = INLINE_LIMIT, owner: int | None = None
) -> tuple[bytes | None, str | None]:
    """``(data, None)`` up to ``limit`` bytes; larger ones are stored once by content.

    The key is the SHA-256 of the bytes, or with ``owner`` (a job) of the job's id and the
    bytes: a blob only that job's rows may share. A job's child branches are keyed so, because
    a ride deletes its branch's blob (:func:`drop_unused`): shared with a rerun of the same
    job, the deletion could race the rerun's insert of a row referring to it (each
    transaction sees the other's row missing), and that row would lose its branch.
    """
    if len(data) <= limit:
        return data, None
    salt = b"" if owner is None else f"job:{owner}:".encode()
    sha = hashlib.sha256(salt + data).hexdigest()
    row = {"sha256": sha, "size": len(data), "data": data, "created_at": utcnow()}
    insert_ignore(conn, ARTIFACTS, [row], "sha256")
    return None, sha


def load_blob(conn: Connection, data: bytes | None, ref: str | None) -> bytes | None:
    """The bytes of an inline or artifact-stored blob."""
    if data is not None or ref is None:
        return data
    return conn.execute(select(ARTIFACTS.c.data).where(ARTIFACTS.c.sha256 == ref)).scalar_one()


def drop_unused(conn: Connection, shas: set[str]) -> None:
    """Delete the artifacts among ``shas`` that no row refers to any more.

    Content-addressed: other rows (of other jobs, for a blob stored without an ``owner``) may
    share a blob. The partial indexes ``ix_nodes_branch_ref`` and ``ix_nodes_theta_ref`` make
    the check a lookup.
    """
    if not shas:
        return
    n = NODES.c
    sha = ARTIFACTS.c.sha256
    used = select(n.id).where(or_(n.branch_ref == sha, n.theta_ref == sha))
    conn.execute(delete(ARTIFACTS).where(sha.in_(sorted(shas)), ~used.exists()))


def decode_tensor(data: bytes, dtype: str) -> Tensor:
    """A stored tensor (``core.branch.tensor_from_bytes``; the engine is imported only here)."""
    from ridgerider.core.branch import tensor_from_bytes

    return tensor_from_bytes(data, dtype)


def decode_branch(data: bytes, theta: bytes | None) -> Branch:
    """A stored branch (``core.branch.Branch.from_bytes``; the engine is imported only here)."""
    from ridgerider.core.branch import Branch

    return Branch.from_bytes(data, theta)
