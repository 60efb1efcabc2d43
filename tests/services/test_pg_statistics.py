"""PostgreSQL: the frontier keeps its tables analyzed and vacuumed itself."""

from __future__ import annotations

import time

import torch
from sqlalchemy import text

from ridgerider.core.branch import Branch
from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.frontier.pgcare import refresh_statistics
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


DEAD = """SELECT n_dead_tup, vacuum_count FROM pg_stat_user_tables
WHERE schemaname = current_schema() AND relname = 'nodes'"""


@PG
def test_the_frontier_vacuums_its_dead_row_versions_without_autovacuum(pg_empty_url: str) -> None:
    """Each branch row is written several times; the frontier makes the old versions' space
    reusable itself once they pass ``DEAD_FRACTION`` of the live rows (the server's
    autovacuum may be off, as on this test's server, or lag behind a fast job)."""
    store = SQLStorage(pg_empty_url)
    frontier = DatabaseFrontier(store)

    def dead_and_vacuums() -> tuple[int, int]:
        with store.db.session(write=False) as s:
            row = s.execute(text(DEAD)).one()
        return int(row[0]), int(row[1])

    job = submit(frontier)
    assert drain(frontier, job, fanout=3, depth=4) == reference("bfs", fanout=3, depth=4)
    deadline = time.time() + 30  # the servers' counters arrive within seconds
    while dead_and_vacuums()[0] <= 50 and time.time() < deadline:
        time.sleep(0.2)  # no tick meanwhile: the dead versions are counted first
    dead, vacuums = dead_and_vacuums()
    assert dead > 50 and vacuums == 0  # 121 rows written four times each
    ran: list[str] = []
    vacuumed = lambda: any(r.startswith("VACUUM") and r.endswith(" nodes") for r in ran)  # noqa: E731
    while not vacuumed() and time.time() < deadline:
        ran += refresh_statistics(store.db)
        time.sleep(0.2)
    assert vacuumed(), ran
    while dead_and_vacuums()[1] == 0 and time.time() < deadline:
        time.sleep(0.2)
    assert dead_and_vacuums()[0] < dead
    frontier.close()
    store.close()


@PG
def test_dead_toast_chunks_count_on_their_own(pg_empty_url: str) -> None:
    """A few large records cut to headers: few dead rows, but hundreds of dead TOAST chunks
    (a large problem's θs, in records written inline), which make ``nodes`` due for ``VACUUM``
    by themselves."""
    store = SQLStorage(pg_empty_url)
    frontier = DatabaseFrontier(store)
    job = submit(frontier)
    with store.db.session(write=False) as s:
        sql = "SELECT id FROM nodes WHERE job_id = :j AND parent_id IS NULL"
        root = s.execute(text(sql), {"j": job}).scalar_one()
    small = torch.zeros(2, dtype=torch.float64)
    kids = [Branch(small, small, -1.0, ((i, 1),), i, 0.0, 0) for i in range(4)]
    assert frontier.push(job, root, kids) == 4
    big = torch.linspace(0.0, 1.0, 25_000, dtype=torch.float64)  # 200 KB a record: TOASTed
    with store.db.session() as s:  # inline (a child's ridge this size is an artifact)
        sql = "UPDATE nodes SET branch_data = :b WHERE parent_id = :p"
        s.execute(text(sql), {"b": big.numpy().tobytes(), "p": root})
    with store.db.session() as s:  # what a compaction does: the rows keep their headers
        s.execute(text("UPDATE nodes SET branch_data = '\\x00' WHERE parent_id = :p"), {"p": root})
    ran: list[str] = []
    deadline = time.time() + 30  # the servers' counters arrive within seconds
    while not any(r.startswith("VACUUM") for r in ran) and time.time() < deadline:
        ran += refresh_statistics(store.db)
        time.sleep(0.2)
    assert any(r.startswith("VACUUM") and r.endswith(" nodes") for r in ran), ran
    frontier.close()
    store.close()


@PG
def test_connections_plan_each_statement_unless_the_url_says_otherwise(pg_empty_url: str) -> None:
    """Custom plans by default (``storage.session``); the URL's own options come last."""
    from sqlalchemy.engine import make_url

    from ridgerider.services.storage.session import Database

    def settings(url: str) -> tuple[str, str]:
        db = Database(url)
        try:
            with db.read() as conn:
                mode = conn.exec_driver_sql("SHOW plan_cache_mode").scalar_one()
                path = conn.exec_driver_sql("SHOW search_path").scalar_one()
                return str(mode), str(path)
        finally:
            db.dispose()

    schema = make_url(pg_empty_url).query["options"]
    assert settings(pg_empty_url) == ("force_custom_plan", str(schema).split("=", 1)[1])
    options = {"options": f"{schema} -c plan_cache_mode=auto"}
    auto = make_url(pg_empty_url).update_query_dict(options).render_as_string(hide_password=False)
    assert settings(auto) == ("auto", str(schema).split("=", 1)[1])
