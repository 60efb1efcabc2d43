"""``/crossplay``: validation (422 naming the field, nothing stored), ownership, idempotency,
the SDK end to end (the report equals ``run_crossplay`` called directly), resume at startup."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from ridgerider import schemas
from ridgerider.client import AsyncClient, Client, ConflictError, NotFound
from ridgerider.schemas import CrossplayPublic, CrossplayReportPublic
from ridgerider.services import crossplay as service_xp
from ridgerider.services.crossplay import run_crossplay
from ridgerider.services.crossplay_runs import RUNS, create_run, get_run, unfinished_runs
from ridgerider.services.storage.sql import SQLStorage

from .conftest import API, auth, user_token

GAME = "lever-game"
SMALL: dict[str, Any] = {"problem": GAME, "replicates": 2, "fingerprints": 1, "seed": 5}
"""The cheapest valid request (one fingerprint, two replicates)."""


def direct(**request: Any) -> dict[str, Any]:
    """``run_crossplay`` called directly, without its timing."""
    report = run_crossplay(
        request["problem"],
        request.get("params"),
        request["replicates"],
        request.get("fingerprints"),
        request.get("seed", 0),
    ).to_dict()
    report.pop("elapsed_s")
    return report


def timeless(report: Any) -> dict[str, Any]:
    """A report as a dict without its timing."""
    data = report.model_dump() if hasattr(report, "model_dump") else dict(report)
    data.pop("elapsed_s")
    return data


def test_limits_agree_with_the_service() -> None:
    assert schemas.MAX_REPLICATES == service_xp.MAX_REPLICATES
    assert schemas.MAX_FINGERPRINTS == service_xp.MAX_FINGERPRINTS


@pytest.mark.parametrize(
    ("change", "loc", "words"),
    [
        ({"replicates": 1}, ["body", "replicates"], "greater than or equal to 2"),
        ({"replicates": 257}, ["body", "replicates"], "less than or equal to 256"),
        ({"replicates": True}, ["body", "replicates"], "integer"),
        ({"fingerprints": 0}, ["body", "fingerprints"], "greater than or equal to 1"),
        ({"seed": -1}, ["body", "seed"], "greater than or equal to 0"),
        ({"problem": "no-such-game"}, ["body", "problem"], "no-such-game"),
        ({"problem": "tree-rl"}, ["body", "problem"], "not a two-player game"),
        ({"params": {"payoffs": "x"}}, ["body", "params", "payoffs"], "comma-separated"),
        ({"params": {"levers": 3}}, ["body", "params", "levers"], ""),
        ({"workers": 2}, ["body", "workers"], "Extra inputs"),
    ],
)
def test_invalid_input_is_422_naming_the_field_and_stores_nothing(
    make_client, db_url: str, change: dict[str, Any], loc: list[str], words: str
) -> None:
    token = user_token(db_url, "val")
    with make_client(workers=0) as c:
        r = c.post(f"{API}/crossplay", json=SMALL | change, headers=auth(token))
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert [d["loc"] for d in detail] == [loc]
        assert words in detail[0]["msg"]
        assert c.get(f"{API}/crossplay", headers=auth(token)).json()["items"] == []
    storage = SQLStorage(db_url, migrate=False)
    assert unfinished_runs(storage) == []
    storage.close()


def test_a_game_over_the_parameter_limit_is_422(make_client) -> None:
    with make_client(dev=True, workers=0, max_params=10) as c:
        r = c.post(f"{API}/crossplay", json=SMALL)
        assert r.status_code == 422
        (item,) = r.json()["detail"]
        assert item["loc"] == ["body", "params"] and "exceed the limit 10" in item["msg"]
        assert c.get(f"{API}/crossplay").json()["items"] == []


def test_runs_belong_to_their_owner_and_keys_are_idempotent(make_client, db_url: str) -> None:
    alice, bob = user_token(db_url, "alice"), user_token(db_url, "bob")
    with make_client(workers=0) as c:
        assert c.get(f"{API}/crossplay").status_code == 401
        assert c.post(f"{API}/crossplay", json=SMALL).status_code == 401
        key = {"Idempotency-Key": "xp-1"}
        first = c.post(f"{API}/crossplay", json=SMALL, headers=auth(alice) | key)
        assert first.status_code == 201, first.text
        run_id = first.json()["id"]
        assert first.headers["location"] == f"/api/v1/crossplay/{run_id}"
        again = c.post(f"{API}/crossplay", json=SMALL, headers=auth(alice) | key)
        assert again.status_code == 200 and again.json()["id"] == run_id
        other = c.post(f"{API}/crossplay", json=SMALL | {"seed": 6}, headers=auth(alice) | key)
        assert other.status_code == 409 and str(run_id) in other.json()["detail"]
        bobs = c.post(f"{API}/crossplay", json=SMALL, headers=auth(bob) | key)
        assert bobs.status_code == 201 and bobs.json()["id"] != run_id
        for path in (f"/crossplay/{run_id}", f"/crossplay/{run_id}/result"):
            assert c.get(f"{API}{path}", headers=auth(bob)).status_code == 404
        listed = c.get(f"{API}/crossplay", headers=auth(alice)).json()["items"]
        assert [i["id"] for i in listed] == [run_id]
        bogus = c.get(f"{API}/crossplay?bogus=1", headers=auth(alice))
        assert bogus.status_code == 422 and bogus.json()["detail"][0]["loc"] == ["query", "bogus"]
        rr = Client(token=alice, http=c)
        while not rr.crossplay_status(run_id).finished:
            time.sleep(0.05)
        report = rr.crossplay_result(run_id)
        assert timeless(report) == direct(**SMALL)
        with pytest.raises(NotFound):
            rr.crossplay_status(run_id + 1000)
        # A run stored behind the executor's back stays queued: its report is a 409 until then.
        storage = SQLStorage(db_url, migrate=False)
        user = storage.get_user_by_name("alice")
        assert user is not None
        idle, _ = create_run(storage, SMALL, owner_id=user.id)
        storage.close()
        with pytest.raises(ConflictError, match="is queued"):
            rr.crossplay_result(idle["id"])
        assert rr.crossplay_status(idle["id"]).progress == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sdk_lever_game_end_to_end_equals_run_crossplay(make_client) -> None:
    """Four replicates of the lever game through the service: the report of a direct call.

    On SQLite (runs are stored and read back on PostgreSQL too, by this module's ownership and
    restart tests)."""
    want = direct(problem=GAME, replicates=4, seed=2)
    with make_client(dev=True, workers=0) as http:
        rr = Client(http=http)
        report = rr.crossplay(GAME, replicates=4, seed=2, timeout=300, poll_s=0.05)
        assert isinstance(report, CrossplayReportPublic)
        assert timeless(report) == want
        assert report.chosen["fingerprint"] == want["chosen"]["fingerprint"]
        run = rr.crossplays().items[0]
        assert run.status == "succeeded" and run.done == 4 and run.progress == 1.0
        pending = rr.crossplay(GAME, {"payoffs": "1,1,0.6"}, replicates=2, wait=False)
        assert isinstance(pending, CrossplayPublic) and pending.params == {"payoffs": [1, 1, 0.6]}
        app = http.app

        async def main() -> CrossplayReportPublic:
            transport = httpx.ASGITransport(app=app)
            async with AsyncClient(
                http=httpx.AsyncClient(transport=transport, base_url="http://t")
            ) as arr:
                got = await arr.crossplay(**SMALL, timeout=300, poll_s=0.05)
                assert isinstance(got, CrossplayReportPublic)
                return got

        assert timeless(asyncio.run(main())) == direct(**SMALL)


def test_accepted_runs_survive_a_restart(make_client, db_url: str) -> None:
    """Rows a stopped service left queued or mid-run finish when the next one starts."""
    storage = SQLStorage(db_url)
    queued, _ = create_run(storage, SMALL, owner_id=None)
    crashed, _ = create_run(storage, SMALL | {"seed": 7}, owner_id=None)
    with storage.db.session() as s:  # as if the process died after its first replicate
        s.execute(RUNS.update().where(RUNS.c.id == crashed["id"]).values(status="running", done=1))
    assert unfinished_runs(storage) == [queued["id"], crashed["id"]]
    with make_client(dev=True, workers=0):
        pass  # the startup resumes both; the shutdown kills the run in progress
    with make_client(dev=True, workers=0):  # a run the first shutdown stopped goes on here
        for _ in range(6000):
            if not unfinished_runs(storage):
                break
            time.sleep(0.05)
    assert unfinished_runs(storage) == []
    for row, seed in ((queued, 5), (crashed, 7)):
        done = get_run(storage, row["id"])
        assert done is not None and done["status"] == "succeeded" and done["done"] == 2
        done["result"].pop("elapsed_s")
        assert done["result"] == direct(**SMALL | {"seed": seed})
    storage.close()
