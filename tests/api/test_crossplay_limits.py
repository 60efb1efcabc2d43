"""Cross-play runs are bounded per user and never hold the service's shutdown.

A user may have ``crossplay_max_runs`` runs queued or running (one more is a 429 naming the
setting, nothing stored; other users are unaffected). Runs compute in a process of their own,
so stopping the app in the middle of a long run returns at once, and the next start runs it
again to the report a direct call writes.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ridgerider.api import create_app
from ridgerider.config import Settings
from ridgerider.services.crossplay_runs import get_run, unfinished_runs
from ridgerider.services.storage.sql import SQLStorage

from .conftest import API, auth, user_token
from .test_crossplay import GAME, SMALL, direct

LONG = 16
"""Replicates of the long run: scoring them after the last one takes seconds (minutes at 233)."""


def wait_finished(c: TestClient, run_id: int, headers: dict[str, str], timeout: float) -> dict:
    """Poll a run until it finishes; its last status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = c.get(f"{API}/crossplay/{run_id}", headers=headers).json()
        if run["status"] in ("succeeded", "failed"):
            return run
        time.sleep(0.05)
    raise AssertionError(f"cross-play {run_id} did not finish: {run}")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the count is one query
def test_a_user_over_the_limit_gets_429_and_others_do_not(make_client, db_url: str) -> None:
    alice, bob = auth(user_token(db_url, "alice")), auth(user_token(db_url, "bob"))
    key = {"Idempotency-Key": "first"}
    with make_client(workers=0, crossplay_max_runs=1) as c:
        first = c.post(f"{API}/crossplay", json=SMALL, headers=alice | key)
        assert first.status_code == 201, first.text
        over = c.post(f"{API}/crossplay", json=SMALL | {"seed": 6}, headers=alice)
        assert over.status_code == 429, over.text
        body = over.json()
        assert body["limit"] == "crossplay_max_runs" and body["max"] == 1 and body["active"] == 1
        assert "crossplay_max_runs = 1" in body["detail"]
        listed = c.get(f"{API}/crossplay", headers=alice).json()["items"]
        assert [r["id"] for r in listed] == [first.json()["id"]]  # nothing stored
        retry = c.post(f"{API}/crossplay", json=SMALL, headers=alice | key)
        assert retry.status_code == 200 and retry.json()["id"] == first.json()["id"]
        invalid = c.post(f"{API}/crossplay", json=SMALL | {"replicates": 1}, headers=alice)
        assert invalid.status_code == 422  # input is checked first, whatever the count
        assert c.post(f"{API}/crossplay", json=SMALL, headers=bob).status_code == 201
        # a finished run frees its place
        assert wait_finished(c, first.json()["id"], alice, 300)["status"] == "succeeded"
        again = c.post(f"{API}/crossplay", json=SMALL | {"seed": 6}, headers=alice)
        assert again.status_code == 201, again.text


@pytest.mark.slow
def test_shutdown_in_a_long_run_is_prompt_and_the_next_start_reruns_it(sqlite_url: str) -> None:
    """Stopped once every replicate is done, in the long uninterruptible scoring that follows
    (with 233 replicates it took minutes, and the service's shutdown waited for it)."""
    request: dict[str, Any] = {"problem": GAME, "replicates": LONG, "seed": 3}
    settings = Settings(database_url=sqlite_url, dev=True, workers=0)
    with TestClient(create_app(settings)) as c:
        run_id = c.post(f"{API}/crossplay", json=request).json()["id"]
        deadline = time.monotonic() + 300
        while (run := c.get(f"{API}/crossplay/{run_id}").json())["done"] < LONG:
            assert run["status"] in ("queued", "running") and time.monotonic() < deadline
            time.sleep(0.02)
        start = time.monotonic()  # leaving the block runs the lifespan's shutdown
    stopped_in = time.monotonic() - start
    assert stopped_in < 3.0, f"the shutdown took {stopped_in:.1f} s"
    storage = SQLStorage(sqlite_url, migrate=False)
    row = get_run(storage, run_id)
    assert row is not None and row["status"] == "running" and row["result"] is None
    assert unfinished_runs(storage) == [run_id]
    with TestClient(create_app(settings)) as c:  # the next start runs it again
        assert wait_finished(c, run_id, {}, 600)["status"] == "succeeded"
        report = c.get(f"{API}/crossplay/{run_id}/result").json()
    storage.close()
    report.pop("elapsed_s")
    assert report == direct(**request)
