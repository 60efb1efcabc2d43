"""``/readyz`` (unauthenticated) says which check failed and nothing else; the log says why."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import create_engine

from ridgerider.api import create_app
from ridgerider.config import Settings

from .conftest import API, PG, REDIS, REDIS_URL

pytestmark = [PG, REDIS]
HIDDEN = ("127.0.0.1", "port", "Error", "refused", "s3cret", "Connection", "psycopg")
"""What a driver's message holds (host, port, exception, password) and the body must not."""


def unreachable_database(**_: Any) -> None:
    """Connect to a PostgreSQL server that is not there (the driver's own exception)."""
    engine = create_engine("postgresql+psycopg://rr:s3cret@127.0.0.1:1/archive")
    try:
        engine.connect()
    finally:
        engine.dispose()


@pytest.mark.usefixtures("redis_server")
def test_a_failed_check_is_named_without_its_detail(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(database_url=pg_url, redis_url=REDIS_URL, dev=True, workers=0)
    with TestClient(create_app(settings)) as c:
        for path in ("/readyz", f"{API}/readyz"):
            r = c.get(path)
            assert r.status_code == 200 and r.json()["checks"]["frontier"] == "ok"
        frontier = c.app.state.service.archive.frontier  # type: ignore[attr-defined]
        storage = c.app.state.service.archive.storage  # type: ignore[attr-defined]
        gone = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
        monkeypatch.setattr(frontier, "redis", gone)
        with caplog.at_level(logging.ERROR, "ridgerider.api.routes.system"):
            down = c.get("/readyz")
        assert down.status_code == 503
        assert down.json() == {
            "ready": False,
            "checks": {
                "database": "ok",
                "frontier": "error",
                "workers": "ok (none in this process)",
            },
        }
        assert not [word for word in HIDDEN if word in down.text], down.text
        assert "127.0.0.1:1" in caplog.text  # the operator's log has the detail
        caplog.clear()

        monkeypatch.setattr(storage, "list_jobs", unreachable_database)
        with caplog.at_level(logging.ERROR, "ridgerider.api.routes.system"):
            down = c.get(f"{API}/readyz")
        assert down.status_code == 503
        assert down.json()["checks"] == {
            "database": "error",
            "frontier": "error",
            "workers": "ok (none in this process)",
        }
        assert not [word for word in HIDDEN if word in down.text], down.text
        assert "OperationalError" in caplog.text and "port 1" in caplog.text
        monkeypatch.undo()  # reachable again for the shutdown
