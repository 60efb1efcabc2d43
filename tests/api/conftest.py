"""Apps on every database (SQLite file, PostgreSQL), users with tokens, a reference search."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ridgerider.api import create_app
from ridgerider.config import Settings
from ridgerider.core import RRSettings, run_search
from ridgerider.problems import create
from ridgerider.services.storage.sql import SQLStorage
from services.conftest import (  # noqa: F401 (fixtures)
    PG,
    REDIS,
    REDIS_URL,
    namespace,
    pg_server,
    pg_session_db,
    pg_url,
    redis_client,
    redis_server,
    sqlite_url,
)

API = "/api/v1"
PROBLEM = "tree-rl"
PARAMS = {"depth": 4, "tree_seed": 2}
BODY: dict[str, Any] = {"problem": PROBLEM, "params": PARAMS, "seed": 3}

AppFactory = Callable[..., Any]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=PG)])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh archive: a SQLite file or the emptied PostgreSQL test database."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def make_client(db_url: str) -> Iterator[Callable[..., Any]]:
    """``with make_client(dev=..., workers=...) as client`` runs the app on ``db_url``."""

    @contextmanager
    def make(**kw: Any) -> Iterator[TestClient]:
        settings = Settings(**{"database_url": db_url, "worker_poll_s": 0.02, **kw})
        with TestClient(create_app(settings)) as client:
            yield client

    yield make


def user_token(db_url: str, name: str) -> str:
    """A token of a (new) user on the archive at ``db_url``."""
    from ridgerider.services import accounts

    storage = SQLStorage(db_url)
    try:
        return accounts.create_token(storage, name)[1]
    finally:
        storage.close()


def auth(token: str) -> dict[str, str]:
    """The header that authenticates as ``token``."""
    return {"Authorization": f"Bearer {token}"}


def wait_done(client: TestClient, job_id: int, headers: dict[str, str] | None = None) -> dict:
    """Poll until the job finishes (at most 120 s)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = client.get(f"{API}/jobs/{job_id}", headers=headers or {}).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def reference(seed: int = 3, **settings: Any) -> Any:
    """``core.run_search`` on the test problem (what every stored tree must equal)."""
    problem = create(PROBLEM, PARAMS)
    rr = RRSettings(**{**problem.default_settings(), **settings})
    return run_search(problem, rr, seed=seed)
