"""Backends for the contract suites: every storage and every frontier, on real servers.

PostgreSQL and Redis are used for real (``RIDGERIDER_TEST_POSTGRES_URL``, default
``postgresql://postgres@127.0.0.1:5432/postgres``; ``RIDGERIDER_TEST_REDIS_URL``, default
``redis://127.0.0.1:6379/0``). A test session creates its own PostgreSQL database named after its
pid (dropped at the end) and empties the tables between tests; Redis keys live under a namespace
unique to each test. Tests needing a server that is not reachable are skipped, saying why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import psycopg
import pytest
import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url

from ridgerider.services.frontier.base import Frontier
from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.frontier.memory import MemoryFrontier
from ridgerider.services.frontier.redis import RedisFrontier
from ridgerider.services.storage.base import Storage
from ridgerider.services.storage.memory import InMemoryStorage
from ridgerider.services.storage.sql import SQLStorage

PG_URL = os.environ.get(
    "RIDGERIDER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("RIDGERIDER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

PG = pytest.mark.postgres
REDIS = pytest.mark.redis


def _pg_admin(database: str | None = None) -> psycopg.Connection:
    u = make_url(PG_URL)
    return psycopg.connect(
        host=u.host,
        port=u.port or 5432,
        user=u.username,
        password=u.password,
        dbname=database or u.database or "postgres",
        autocommit=True,
        connect_timeout=3,
    )


def pg_database_url(name: str) -> str:
    """The URL of another database on the test server."""
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[None]:
    """Skip unless the PostgreSQL server answers."""
    try:
        _pg_admin().close()
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {make_url(PG_URL).host}: {exc}")
    yield


@pytest.fixture
def pg_empty_url(pg_session_db: str) -> Iterator[str]:
    """An empty schema of the session database (for migration tests), dropped afterwards.

    A schema, not a database: creating and dropping databases forces checkpoints (slow).
    """
    name = f"rr_empty_{uuid.uuid4().hex[:8]}"
    url = make_url(pg_session_db)
    with _pg_admin(url.database) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield url.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(
            hide_password=False
        )
    finally:
        with _pg_admin(url.database) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture(scope="session")
def pg_session_db(pg_server: None) -> Iterator[str]:
    """This session's database, migrated once."""
    name = f"rr_test_{os.getpid()}"
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_database_url(name)
    SQLStorage(url).close()
    try:
        yield url
    finally:
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_session_db: str) -> str:
    """The session database, emptied for this test."""
    store = SQLStorage(pg_session_db, migrate=False)
    with store.db.session() as s:
        s.execute(text("TRUNCATE users, jobs, artifacts RESTART IDENTITY CASCADE"))
    store.close()
    return pg_session_db


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file."""
    return f"sqlite:///{tmp_path / 'archive.db'}"


@pytest.fixture(scope="session")
def redis_server() -> None:
    """Skip unless the Redis server answers."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")


@pytest.fixture
def redis_client(redis_server: None) -> Iterator[redis.Redis]:
    """A client of the real server."""
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def namespace(redis_client: redis.Redis) -> Iterator[str]:
    """A key namespace on the real Redis unique to this test (its keys are deleted afterwards)."""
    ns = f"rrtest:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    yield ns
    wipe(redis_client, ns)


def wipe(client: redis.Redis, namespace: str) -> None:
    """Lose every key of a frontier (what a Redis restart without persistence does to it)."""
    if isinstance(client, fakeredis.FakeRedis):
        client.flushall()
        return
    keys = list(client.scan_iter(f"{namespace}:*"))
    if keys:
        client.delete(*keys)


STORAGES = ["memory", "sqlite", pytest.param("postgres", marks=PG)]
FRONTIERS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=PG),
    "fakeredis",
    pytest.param("redis", marks=[PG, REDIS]),
]


@pytest.fixture(params=STORAGES)
def storage(request: pytest.FixtureRequest) -> Iterator[Storage]:
    """Every storage: in-memory, SQLite, PostgreSQL."""
    kind = request.param
    if kind == "memory":
        yield InMemoryStorage()
        return
    url = request.getfixturevalue("sqlite_url" if kind == "sqlite" else "pg_url")
    store = SQLStorage(url)
    yield store
    store.close()


def make_frontier(kind: str, request: pytest.FixtureRequest, speculation: int = 0) -> Frontier:
    """A frontier of one kind on a fresh archive.

    ``speculation``: the database frontiers' cap of rides ahead of their turn; 0 (claims of
    admitted branches only) for the contract suite, which checks claims one by one
    (``test_speculation.py`` covers speculative claims).
    """
    if kind == "memory":
        return MemoryFrontier(InMemoryStorage())
    if kind in ("sqlite", "fakeredis"):
        store = SQLStorage(request.getfixturevalue("sqlite_url"))
    else:
        store = SQLStorage(request.getfixturevalue("pg_url"))
    if kind in ("sqlite", "postgres"):
        return DatabaseFrontier(store, speculation=speculation)
    if kind == "fakeredis":
        client, ns = fakeredis.FakeRedis(server=fakeredis.FakeServer()), "rr"
    else:
        client, ns = request.getfixturevalue("redis_client"), request.getfixturevalue("namespace")
    return RedisFrontier(store, client, namespace=ns)


@pytest.fixture(params=FRONTIERS)
def frontier(request: pytest.FixtureRequest) -> Iterator[Frontier]:
    """Every frontier: in-memory, database (SQLite, PostgreSQL), fakeredis, real Redis."""
    fr = make_frontier(request.param, request)
    yield fr
    fr.close()
    fr.storage.close()
