"""Property-based fuzz of the OpenAPI schema (schemathesis): no 5xx, every response conforms.

The service runs for real (uvicorn in a thread, SQLite, one worker) with a few jobs in it, and
each operation gets a bounded number of generated requests, authenticated as their owner.
``job_events`` is left out: on a running job it streams until the job ends (tested in
test_routes). The check that every schema-valid request is accepted is left out too: a problem's
parameters and some settings (``alpha_min <= alpha``, the dense-Hessian size limit) are checked
against the registry, which the schema cannot express; those get 422 naming the field.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from ridgerider.api import create_app
from ridgerider.config import Settings
from ridgerider.services import accounts
from ridgerider.services.storage.sql import SQLStorage

from .conftest import API, BODY
from .test_serve_e2e import free_port

schema = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="sqlite://", workers=0)).openapi()
).exclude(name="GET /api/v1/jobs/{job_id}/events")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A running service with a user, a token and a few of their jobs."""
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'archive.db'}"
    storage = SQLStorage(url)
    _, token = accounts.create_token(storage, "fuzzer")
    storage.close()
    app = create_app(Settings(database_url=url, workers=1, worker_poll_s=0.05))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.05)
    for seed in range(3):
        r = httpx.post(
            f"{base}{API}/jobs", json=BODY | {"seed": seed}, headers=headers, timeout=120
        )
        assert r.status_code == 201
    yield {"base_url": base, "headers": headers}
    server.should_exit = True
    thread.join(60)


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_error_and_responses_conform(case: Any, live: dict[str, Any]) -> None:
    case.call_and_validate(
        base_url=live["base_url"],
        headers=live["headers"],
        excluded_checks=[positive_data_acceptance],
        timeout=120,
    )


def test_fuzz_covers_the_api(tmp_path: Path) -> None:
    """Control: every operation but the event stream is fuzzed."""
    names = {op.ok().label for op in schema.get_all_operations()}
    assert "POST /api/v1/jobs" in names and "GET /api/v1/jobs/{job_id}/tree" in names
    assert "GET /api/v1/jobs/{job_id}/tree/compact" in names
    assert "GET /api/v1/jobs/{job_id}/chosen" in names
    assert len(names) == 24
