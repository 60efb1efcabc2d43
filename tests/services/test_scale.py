"""Reads stay fast on big jobs: every page of a 100k-node tree is one index range scan."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import text

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

    t0 = time.perf_counter()
    page = store.list_nodes(job, cursor=90_000, limit=500)
    first = time.perf_counter() - t0
    assert [n.rank for n in page.items] == list(range(90_000, 90_500))
    assert page.next_cursor == 90_500
    t0 = time.perf_counter()
    for cursor in range(0, N, N // 20):
        store.list_nodes(job, cursor=cursor, limit=500)
    per_page = (time.perf_counter() - t0) / 20
    assert first < 0.5 and per_page < 0.1, (first, per_page)
    assert store.count_nodes(job) == {"done": N - 1, "waiting": 1}

    q = "SELECT id FROM nodes WHERE job_id = :j AND rank >= :c AND rank < :p ORDER BY rank LIMIT 9"
    args = {"j": job, "c": 90_000, "p": N}
    with store.db.session(write=False) as s:
        if store.db.is_sqlite:
            plan = " ".join(str(r[-1]) for r in s.execute(text("EXPLAIN QUERY PLAN " + q), args))
            assert "INDEX" in plan and "(job_id=? AND rank>" in plan, plan
        else:
            plan = " ".join(r[0] for r in s.execute(text("EXPLAIN " + q), args))
            assert "Index" in plan and "uq_nodes_job_id_rank" in plan, plan
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan  # no sort of the job
    store.close()
