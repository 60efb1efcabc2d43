"""PostgreSQL: the frontier keeps the planner statistics of its tables current itself."""

from __future__ import annotations

import time

from sqlalchemy import text

from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.storage.sql import SQLStorage

from .conftest import PG
from .synthetic import drain, reference, submit

STATS = "SELECT count(*) FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'nodes'"


@PG
def test_a_grown_job_gets_statistics_without_autovacuum(pg_empty_url: str) -> None:
    store = SQLStorage(pg_empty_url)  # a fresh schema: no statistics at all yet
    frontier = DatabaseFrontier(store)

    def analyzed() -> bool:
        with store.db.session(write=False) as s:
            return bool(s.execute(text(STATS)).scalar())

    assert not analyzed()
    job = submit(frontier)
    assert drain(frontier, job, fanout=3, depth=3) == reference("bfs", fanout=3, depth=3)
    deadline = time.time() + 30  # the servers' statistics counters arrive within seconds
    while not analyzed() and time.time() < deadline:
        frontier.tick()
        time.sleep(0.2)
    assert analyzed()
    frontier.close()
    store.close()
