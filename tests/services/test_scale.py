"""Reads stay fast on big jobs: every page of a 100k-node tree is one index range scan."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text

from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.storage.models import utcnow
from ridgerider.services.storage.sql import SQLStorage

from .conftest import PG
from .synthetic import submit

N = 100_000
COLS = (
    "job_id",
    "key",
    "depth",
    "child_index",
    "status",
    "attempts",
    "rank",
    "loss",
    "steps",
    "is_solution",
    "metrics",
    "created_at",
)


def bulk_insert(store: SQLStorage, rows: list[tuple[Any, ...]]) -> None:
    """Load rows with the driver's fastest path (COPY on PostgreSQL)."""
    with store.db.session() as s:
        raw = s.connection().connection.driver_connection
        if store.db.is_sqlite:
            marks = ", ".join("?" for _ in COLS)
            raw.executemany(f"INSERT INTO nodes ({', '.join(COLS)}) VALUES ({marks})", rows)
        else:
            with raw.cursor().copy(f"COPY nodes ({', '.join(COLS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=PG)])
def test_reading_a_100k_node_tree_stays_fast(kind: str, request: pytest.FixtureRequest) -> None:
    store = SQLStorage(request.getfixturevalue("sqlite_url" if kind == "sqlite" else "pg_url"))
    job = submit(DatabaseFrontier(store))
    now = utcnow() if kind == "postgres" else utcnow().isoformat(" ")
    rows = [
        (job, f"{i}+", 1, i, "done", 1, i, -float(i), 1, i % 1000 == 0, "{}", now)
        for i in range(1, N)
    ]
    bulk_insert(store, rows)
    with store.db.session() as s:
        s.execute(text("UPDATE jobs SET prefix = :n, admitted = :n"), {"n": N})
        s.execute(text("ANALYZE"))
    assert store.get_job(job).nodes == N  # type: ignore[union-attr]

    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "nodes" in statement:
            seen.append((statement, params))

    event.listen(store.db.engine, "before_cursor_execute", capture)
    page = store.list_nodes(job, cursor=90_000, limit=500)
    event.remove(store.db.engine, "before_cursor_execute", capture)
    assert [n.rank for n in page.items] == list(range(90_000, 90_500))
    assert page.next_cursor == 90_500
    for cursor in range(0, N, N // 20):  # every page, from the first to the last
        assert len(store.list_nodes(job, cursor=cursor, limit=500).items) == 500
    assert store.count_nodes(job) == {"done": N - 1, "waiting": 1}

    # The statement the page read ran, planned by the server: one range of the (job, rank)
    # index, never a scan or a sort of the job's 100k rows (times are not asserted here).
    (statement, params) = seen[-1]
    with store.db.session(write=False) as s:
        cur = s.connection().connection.driver_connection.cursor()
        if store.db.is_sqlite:
            cur.execute("EXPLAIN QUERY PLAN " + statement, params)
            plan = " ".join(str(r[-1]) for r in cur.fetchall())
            assert "INDEX" in plan and "(job_id=? AND rank>" in plan, plan
        else:
            cur.execute("EXPLAIN " + statement, params)
            plan = " ".join(r[0] for r in cur.fetchall())
            assert "Index" in plan and "uq_nodes_job_id_rank" in plan, plan
            assert "Seq Scan on nodes" not in plan, plan
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan  # no sort of the job
    store.close()
