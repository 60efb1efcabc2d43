"""Many processes on one frontier: no branch claimed twice, every branch completed once;
a claimer killed mid-lease loses its branch to the next claimer once the lease expires."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import pytest
import redis
import torch

from ridgerider.services.frontier.base import Frontier
from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.frontier.redis import RedisFrontier
from ridgerider.services.storage.sql import SQLStorage

from .conftest import PG, REDIS, REDIS_URL
from .synthetic import expansion, reference, submit, tree_keys

CTX = mp.get_context("fork")  # the children need no torch import of their own
KINDS = ["sqlite", pytest.param("postgres", marks=PG), pytest.param("redis", marks=[PG, REDIS])]
SHAPE = {"fanout": 3, "depth": 4}  # 121 nodes


def build(kind: str, url: str, ns: str) -> Frontier:
    store = SQLStorage(url, migrate=False)
    if kind == "redis":
        return RedisFrontier(store, redis.Redis.from_url(REDIS_URL), namespace=ns)
    return DatabaseFrontier(store)


@pytest.fixture(params=KINDS)
def setup(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    kind = request.param
    url = request.getfixturevalue("sqlite_url" if kind == "sqlite" else "pg_url")
    ns = request.getfixturevalue("namespace") if kind == "redis" else "rr"
    SQLStorage(url).close()
    return kind, url, ns


def claimer(kind: str, url: str, ns: str, job_id: int, out: str) -> None:
    torch.set_num_threads(1)
    frontier = build(kind, url, ns)
    claimed, completed, errors = [], [], []
    while True:
        try:
            leases = frontier.claim(f"p{os.getpid()}", 2, job_id=job_id)
        except Exception as exc:  # "database is locked" would land here
            errors.append(repr(exc))
            continue
        if not leases:
            job = frontier.storage.get_job(job_id)
            if job is None or job.status != "running":
                break
            time.sleep(0.005)
            continue
        for lease in leases:
            claimed.append(lease.node_id)
            if frontier.complete(lease, expansion(lease.branch, **SHAPE)):
                completed.append(lease.node_id)
    Path(out).write_text(json.dumps({"claimed": claimed, "completed": completed, "errors": errors}))


def test_eight_processes_claim_each_branch_once(
    setup: tuple[str, str, str], tmp_path: Path
) -> None:
    kind, url, ns = setup
    frontier = build(kind, url, ns)
    job = submit(frontier, order="bfs", lease_s=120)
    outs = [str(tmp_path / f"w{i}.json") for i in range(8)]
    procs = [CTX.Process(target=claimer, args=(kind, url, ns, job, out)) for out in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    logs = [json.loads(Path(o).read_text()) for o in outs]
    claimed = [i for log in logs for i in log["claimed"]]
    completed = [i for log in logs for i in log["completed"]]
    assert [e for log in logs for e in log["errors"]] == []
    assert len(claimed) == len(set(claimed)) == 121  # never the same branch twice
    assert sorted(completed) == sorted(claimed)  # every branch completed exactly once
    assert sum(1 for log in logs if log["completed"]) > 1  # the work was really shared
    assert frontier.storage.count_nodes(job) == {"done": 121}
    assert tree_keys(frontier, job) == reference("bfs", **SHAPE)


def holder(kind: str, url: str, ns: str, job_id: int, conn: object) -> None:
    frontier = build(kind, url, ns)
    (lease,) = frontier.claim("victim", 1, job_id=job_id, lease_s=1.0)
    conn.send(lease.node_id)  # type: ignore[attr-defined]
    time.sleep(120)


def test_a_killed_claimer_loses_its_branch_when_the_lease_expires(
    setup: tuple[str, str, str],
) -> None:
    kind, url, ns = setup
    frontier = build(kind, url, ns)
    job = submit(frontier)
    parent, child = CTX.Pipe()
    proc = CTX.Process(target=holder, args=(kind, url, ns, job, child))
    proc.start()
    node_id = parent.recv()
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert frontier.claim("next", 1, job_id=job) == []  # the lease still runs
    frontier.start_reaper(interval=0.1)
    deadline = time.time() + 10
    leases = []
    while not leases and time.time() < deadline:
        time.sleep(0.1)
        leases = frontier.claim("next", 1, job_id=job)
    frontier.stop_reaper()
    (lease,) = leases
    assert lease.node_id == node_id and lease.attempt == 2  # the killed attempt counted
    assert frontier.complete(lease, expansion(lease.branch, fanout=0))
    assert "leases_expired" in [e.kind for e in frontier.storage.list_events(job).items]
