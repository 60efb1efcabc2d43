"""Compaction of a finished job's branches: each row keeps its header, the tensors go.

A child branch's θ is its parent's end θ (stored once, in the parent's ``theta_data``), and its
ridge is recomputed from that θ and the parent's seed (``core.expand.restore``). So when a job
succeeds (its tree is complete, or a budget stopped it), every non-root branch row can shrink
to its header: ridden rows (``done``) are never ridden again, and waiting rows — branches the
budget never admitted — are restored by the worker that claims them if ``extend`` raises the
budgets. Rows that cannot be restored (written before branches recorded their parent's seed)
keep their tensors. Leased rows are left alone: a lease may still be riding.

Most unridden branches never hold a ridge at all: children pushed once the job's budgets admit
no further rank are written as headers (``frontier.codec.admits_no_more``); this pass cuts the
ones pushed before. Failed and cancelled jobs are not compacted: ``resume`` (a Ctrl-C is a
cancel) rides their admitted waiting branches next, and restoring each would cost a GetRidges
for nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, update

from ridgerider.schemas.enums import NodeStatus
from ridgerider.services.storage.tables import ARTIFACTS, NODES, drop_unused

__all__ = ["compact_job", "compact_record", "release_pages"]

_BATCH = 1000
_INCREMENTAL = 2
"""``PRAGMA auto_vacuum``'s value for incremental mode."""
_HEAD = 65536
"""Bytes read of each record: its header (a fingerprint of thousands of choices fits)."""


def compact_record(data: bytes, status: str) -> bytes | None:
    """The compacted form of a non-root branch record of a finished job (``None``: keep it)."""
    from ridgerider.core.branch import compact_bytes  # torch: only once a job ends

    if status not in (NodeStatus.DONE, NodeStatus.WAITING):
        return None
    try:
        return compact_bytes(data, ridden=status == NodeStatus.DONE)
    except ValueError:
        return None  # not a branch this version can read: keep it as it is


def compact_job(conn: Connection, job_id: int) -> int:
    """Shrink a finished job's non-root branch rows to their headers; returns rows changed.

    Runs in the caller's transaction, ``_BATCH`` rows at a time (their first :data:`_HEAD`
    bytes: the header is all a compacted record keeps). Artifacts only the compacted rows
    used are deleted.
    """
    n = NODES.c
    blob = select(ARTIFACTS.c.data).where(ARTIFACTS.c.sha256 == n.branch_ref).scalar_subquery()
    data = func.coalesce(n.branch_data, blob)
    base = select(
        n.id, n.status, n.branch_ref, func.length(data).label("size"),
        func.substr(data, 1, _HEAD).label("head"),
    ).where(
        n.job_id == job_id,
        n.parent_id.is_not(None),
        n.status.in_([NodeStatus.DONE.value, NodeStatus.WAITING.value]),
        or_(n.branch_data.is_not(None), n.branch_ref.is_not(None)),
    ).order_by(n.id).limit(_BATCH)  # fmt: skip
    stmt = update(NODES).where(n.id == bindparam("b_id"))
    stmt = stmt.values(branch_data=bindparam("b_data"), branch_ref=None)
    changed, after, refs = 0, 0, set()
    while True:
        rows = conn.execute(base.where(n.id > after)).all()
        if not rows:
            break
        after = rows[-1].id
        updates: list[dict[str, Any]] = []
        for r in rows:
            small = compact_record(bytes(r.head), r.status)
            if small is not None and len(small) < r.size:
                updates.append({"b_id": r.id, "b_data": small})
                if r.branch_ref is not None:
                    refs.add(r.branch_ref)
        if updates:
            conn.execute(stmt, updates)
            changed += len(updates)
    drop_unused(conn, refs)
    if conn.dialect.name == "sqlite":  # completions may have freed pages too (ridden artifacts)
        release_pages(conn)
    return changed


def release_pages(conn: Connection) -> int:
    """Give a SQLite file's free pages back to the file system; returns the pages released.

    Only archives created in incremental auto-vacuum mode (``session``'s pragmas; older files
    keep their free pages for later writes, as before). One ``incremental_vacuum`` step
    releases one page per execution through the driver, hence the loop.
    """
    if conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() != _INCREMENTAL:
        return 0
    free = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar() or 0)
    for _ in range(free):
        conn.exec_driver_sql("PRAGMA incremental_vacuum").close()
    return free
