"""The SDK against an in-process app (sync and asyncio), and that it imports without torch."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import torch

from ridgerider.client import AsyncClient, AuthError, Client, ConflictError, NotFound
from ridgerider.client import ValidationError as ApiValidationError
from ridgerider.problems import create
from ridgerider.services.storage.sql import SQLStorage

from .conftest import PARAMS, PROBLEM, reference, user_token

SRC = Path(__file__).resolve().parents[2] / "src"


def test_the_sdk_imports_neither_torch_nor_the_server() -> None:
    """Neither the SDK nor the wire models it returns load the engine or the server."""
    code = (
        "import json, sys\nimport ridgerider.client, ridgerider.schemas\n"
        "heavy = ('torch', 'numpy', 'fastapi', 'sqlalchemy', 'starlette', 'ridgerider.core',"
        " 'ridgerider.services', 'ridgerider.problems', 'ridgerider.api', 'ridgerider.workers')\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


NO_TORCH_SCRIPT = """
import json, sys
for name in ("torch", "numpy", "fastapi", "sqlalchemy", "starlette", "uvicorn"):
    sys.modules[name] = None  # importing them now raises ImportError
import httpx
from ridgerider.client import Client, ValidationError
from ridgerider.schemas import JobPublic, JobStatus

job, error = json.loads(sys.argv[1]), json.loads(sys.argv[2])

def answer(request):
    if request.method == "POST":
        return httpx.Response(422, json=error)
    return httpx.Response(200, json=job)

rr = Client(http=httpx.Client(transport=httpx.MockTransport(answer), base_url="http://t"))
got = rr.get(job["id"])
assert isinstance(got, JobPublic) and isinstance(got.status, JobStatus)
try:
    rr.submit("tree-rl", {"depth": 0})
except ValidationError as exc:
    print(json.dumps({"id": got.id, "status": got.status, "fields": exc.fields}))
"""


def test_the_sdk_works_where_torch_cannot_be_imported(make_client) -> None:
    """``pip install --no-deps ridgerider httpx pydantic`` is enough for the SDK."""
    with make_client(dev=True, workers=0) as http:
        job = http.post("/api/v1/jobs", json={"problem": PROBLEM, "params": PARAMS}).json()
        error = http.post("/api/v1/jobs", json={"problem": PROBLEM, "params": {"depth": 0}})
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [sys.executable, "-c", NO_TORCH_SCRIPT, json.dumps(job), error.text],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["id"] == job["id"] and result["status"] == job["status"]
    assert list(result["fields"]) == ["params.depth"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_clients_see_a_long_ride_before_it_finishes(make_client) -> None:
    """``rides`` (sync and async) shows the steps of a ride of thousands of steps as it runs.

    One backend here (the API route runs on PostgreSQL in test_routes; every storage keeps
    ride progress in the frontier contract)."""
    long_ride = {"step_rule": "fixed", "alpha": 1e-4, "max_ride_steps": 6000}
    with make_client(dev=True, workers=1) as http:
        rr = Client(http=http)
        job = rr.submit("toy2d", {}, max_nodes=2, settings=long_ride)
        deadline = time.monotonic() + 60
        while not (rides := rr.rides(job.id)) or rides[0].steps == 0:
            assert time.monotonic() < deadline, "no live progress"
            time.sleep(0.05)
        assert rides[0].depth == 1 and rides[0].loss is not None
        assert rr.get(job.id).steps == 0  # not in the tree yet
        (seen,) = asyncio.run(_async_rides(http, job.id))
        assert seen.node_id == rides[0].node_id and seen.steps >= rides[0].steps
        done = rr.wait(job.id, timeout=120, poll_s=0.05, progress=True)
        assert done.nodes == 2 and done.steps >= seen.steps and rr.rides(job.id) == []


async def _async_rides(http: object, job_id: int) -> list:
    transport = httpx.ASGITransport(app=http.app)  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await AsyncClient(http=client).rides(job_id)


def test_sync_client_end_to_end(make_client, db_url: str) -> None:
    ref = reference(order="dfs", max_nodes=10)
    with make_client(dev=True, workers=2) as http:
        rr = Client(http=http)
        job = rr.submit(PROBLEM, PARAMS, seed=3, order="dfs", max_nodes=10)
        assert job.status in ("running", "succeeded") and job.max_nodes == 10
        done = rr.wait(job.id, timeout=120, poll_s=0.05, progress=True)
        assert done.status == "succeeded" and done.finished
        tree = rr.tree(job.id)
        assert [tuple(map(tuple, n.fingerprint)) for n in tree.nodes] == [
            n.fingerprint for n in ref.nodes
        ]
        assert list(rr.nodes(job.id, page_size=3)) == tree.nodes
        sols = rr.solutions(job.id)
        assert [s.loss for s in sols] == [n.loss for n in ref.solutions]
        node = tree.nodes[-1]
        assert rr.node(job.id, node.id) == node
        storage = SQLStorage(db_url, migrate=False)
        want = storage.node_theta(node.id)
        storage.close()
        theta = rr.params(job.id, node.id)
        assert isinstance(theta, torch.Tensor) and torch.equal(theta, want)
        assert [j.id for j in rr.list().items] == [job.id]
        assert rr.list(status="running").items == []
        assert PROBLEM in {p.name for p in rr.problems()}

        with pytest.raises(ApiValidationError) as bad:
            rr.submit(PROBLEM, {"depth": 0}, n_ridges=0)
        assert bad.value.fields["settings.n_ridges"].startswith("Input should be greater")
        with pytest.raises(ApiValidationError) as bad:
            rr.submit(PROBLEM, {"depth": 0})
        assert set(bad.value.fields) == {"params.depth"}
        with pytest.raises(NotFound):
            rr.get(10_000)
        with pytest.raises(ConflictError):
            rr.cancel(job.id)
        extended = rr.extend(job.id, max_nodes=11)
        assert extended.max_nodes == 11
        again = rr.submit(PROBLEM, PARAMS, seed=3, idempotency_key="same")
        assert rr.submit(PROBLEM, PARAMS, seed=3, idempotency_key="same").id == again.id
        assert rr.cancel(again.id).status in ("cancelled", "succeeded")


def test_client_without_a_token_gets_auth_error(make_client, db_url: str) -> None:
    token = user_token(db_url, "dora")
    with make_client(workers=0) as http:
        with pytest.raises(AuthError):
            Client(http=http).list()
        rr = Client(token=token, http=http)
        assert rr.list().items == []


def test_async_client(make_client) -> None:
    with make_client(dev=True, workers=1) as http:
        app = http.app

        async def main() -> None:
            transport = httpx.ASGITransport(app=app)
            async with AsyncClient(
                http=httpx.AsyncClient(transport=transport, base_url="http://t")
            ) as rr:
                job = await rr.submit(PROBLEM, PARAMS, seed=3, max_nodes=6)
                done = await rr.wait(job.id, timeout=120, poll_s=0.05)
                assert done.nodes == 6
                nodes = [n async for n in rr.nodes(job.id, page_size=4)]
                assert nodes == (await rr.tree(job.id)).nodes
                assert len(await rr.solutions(job.id)) == sum(bool(n.is_solution) for n in nodes)
                theta = await rr.params(job.id, nodes[0].id)
                assert theta.dtype == torch.float64 and theta.shape == (
                    create(PROBLEM, PARAMS).n_params,
                )
                with pytest.raises(NotFound):
                    await rr.get(10_000)
                assert (await rr.extend(job.id, max_nodes=7)).max_nodes == 7

        asyncio.run(main())
