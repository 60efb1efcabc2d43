"""Core ``Table`` handles of the models (hot paths use Core statements, not ORM units of work)."""

from __future__ import annotations

import hashlib
from typing import Any, cast

from sqlalchemy import Connection, Table, select
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

__all__ = [
    "ARTIFACTS",
    "EVENTS",
    "INLINE_LIMIT",
    "JOBS",
    "NODES",
    "SOLUTIONS",
    "TOKENS",
    "USERS",
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


def insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]], *keys: str) -> int:
    """Insert rows, skipping those that collide on the unique ``keys``; returns rows inserted."""
    if not rows:
        return 0
    ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = ins(table).values(rows).on_conflict_do_nothing(index_elements=list(keys))
    first = next(iter(table.primary_key.columns))
    return len(conn.execute(stmt.returning(first)).all())  # rowcount is unreliable here


def store_blob(conn: Connection, data: bytes) -> tuple[bytes | None, str | None]:
    """``(data, None)`` for small blobs; large ones are stored once by content: ``(None, sha)``."""
    if len(data) <= INLINE_LIMIT:
        return data, None
    sha = hashlib.sha256(data).hexdigest()
    row = {"sha256": sha, "size": len(data), "data": data, "created_at": utcnow()}
    insert_ignore(conn, ARTIFACTS, [row], "sha256")
    return None, sha


def load_blob(conn: Connection, data: bytes | None, ref: str | None) -> bytes | None:
    """The bytes of an inline or artifact-stored blob."""
    if data is not None or ref is None:
        return data
    return conn.execute(select(ARTIFACTS.c.data).where(ARTIFACTS.c.sha256 == ref)).scalar_one()
