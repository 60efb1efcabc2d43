"""The compose stack as processes: jobs through the SDK, then a worker and the API SIGKILLed.

``docker-compose.yml`` is read and each service's command runs with that service's environment
(``stack.Stack``): the machine's PostgreSQL and Redis, ``ray start --head``, two ``worker``
services (each ``ray start`` joining the head, then ``ridgerider worker``), ``ridgerider
migrate`` once, ``ridgerider serve``. Jobs submitted through the SDK with a token give the tree
of the embedded single-process search, also after one worker process and the first of two API
replicas (sharing nothing but the archive) are killed mid-job.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ridgerider.client import Client
from ridgerider.core import RRSettings, run_search
from ridgerider.problems import create
from ridgerider.services.archive import open_archive
from ridgerider.services.storage.migrate import head_revision
from services.conftest import REDIS_URL, _pg_admin, pg_database_url

from .stack import Stack, free_port, job_tree, sdk_token

pytestmark = [
    pytest.mark.slow,
    pytest.mark.ray,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.timeout(300),
]

PROBLEM = "tree-rl"
BIG = {"depth": 8, "tree_seed": 2}
SMALL = {"depth": 4, "tree_seed": 2}
BUDGET = 100
DEEP = 64  # past tree-rl's default depth, so the tree outlasts the budget


def reference(params: dict[str, int], seed: int, **settings: int) -> list[tuple[object, ...]]:
    problem = create(PROBLEM, params)
    rr = RRSettings(**{**problem.default_settings(), **settings})
    return [(n.fingerprint, n.loss) for n in run_search(problem, rr, seed=seed).nodes]


@pytest.fixture
def database(pg_server: None, redis_server: None) -> Iterator[str]:
    """A PostgreSQL database of its own (so its Redis namespace is unique too)."""
    name = f"rr_stack_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_database_url(name)
    try:
        yield url
    finally:
        archive = open_archive(url, REDIS_URL)  # its Redis keys, under the database's namespace
        frontier: Any = archive.frontier
        keys = list(frontier.redis.scan_iter(f"{frontier.ns}:*"))
        if keys:
            frontier.redis.delete(*keys)
        archive.close()
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def stack(tmp_path: Path, database: str) -> Iterator[Stack]:
    secrets = {"database_url": database, "redis_url": REDIS_URL, "ray_auth_token": uuid.uuid4().hex}
    s = Stack(tmp_path, secrets, free_port())
    try:
        yield s
    finally:
        s.stop()


def test_compose_stack_survives_a_worker_and_the_api_killed(stack: Stack) -> None:
    assert head_revision() in stack.run_once("migrate")  # at head before anything serves
    stack.start("ray-head")
    api = stack.start("api")  # needs the archive only
    stack.wait_ray()
    short_leases = {"RIDGERIDER_LEASE_S": "3"}  # a killed worker's branches return in 3 s
    workers = []
    for _ in range(2):  # one after the other: two raylets starting at once can time out
        workers.append(stack.start("worker", short_leases))
        stack.wait_serving(workers[-1])
    stack.wait_ready()
    rr = Client(stack.api_url, token=sdk_token(stack, "erin"), retries=8)
    big = rr.submit(PROBLEM, BIG, seed=3, max_nodes=BUDGET, max_depth=DEEP)
    small = rr.submit(PROBLEM, SMALL, seed=4)
    deadline = time.monotonic() + 300
    while rr.get(big.id).nodes < 10:  # ridden by the Ray workers (the API has none)
        assert time.monotonic() < deadline, stack.logs("worker")
        assert all(w.poll() is None for w in workers), stack.logs("worker")
        time.sleep(0.05)

    first_url = stack.api_url
    stack.api_port = free_port()
    stack.start("api")  # a second replica (the same command), sharing only the archive
    stack.wait_ready()
    rr = Client(stack.api_url, token=sdk_token(stack, "erin"), retries=8)
    assert {j.id for j in rr.list().items} == {big.id, small.id}  # what the first accepted
    with Client(first_url, token=sdk_token(stack, "erin")) as first:
        third = first.submit(PROBLEM, SMALL, seed=5, name="via-first")
    assert rr.get(third.id).name == "via-first"  # the other replica sees it at once
    assert rr.cancel(third.id).status == "cancelled"
    stack.kill(workers[0])
    stack.kill(api)  # the first replica dies: the second serves on
    assert {j.id for j in rr.list().items} == {big.id, small.id, third.id}  # nothing lost
    done = rr.wait(big.id, timeout=180, poll_s=0.2)
    assert done.status == "succeeded" and done.nodes == BUDGET, stack.logs("worker")
    assert job_tree(rr, big.id) == reference(BIG, 3, max_nodes=BUDGET, max_depth=DEEP)
    assert rr.wait(small.id, timeout=60, poll_s=0.2).status == "succeeded"
    assert job_tree(rr, small.id) == reference(SMALL, 4)
    assert workers[1].poll() is None  # the other worker served on
