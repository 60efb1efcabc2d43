"""A durable job grows the tree ``core.run_search`` grows, however it is run."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import socket
import time
from typing import Any

import pytest
import torch

from ridgerider.core import RRSettings, run_search
from ridgerider.core.search import SearchResult
from ridgerider.problems import create
from ridgerider.services import jobs
from ridgerider.services.frontier.base import Frontier
from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.storage.sql import SQLStorage
from ridgerider.workers.worker import Worker

from .conftest import PG, make_frontier

PARAMS = {"depth": 6, "tree_seed": 2}
PROBLEM = create("tree-rl", PARAMS)
CTX = mp.get_context("fork")


def settings(**kw: Any) -> RRSettings:
    return RRSettings(**{**PROBLEM.default_settings(), **kw})


def assert_same_tree(frontier: Frontier, job_id: int, ref: SearchResult) -> None:
    got = list(frontier.storage.iter_nodes(job_id))
    assert [n.key for n in got] == [n.key for n in ref.nodes]
    for mine, theirs in zip(got, ref.nodes, strict=True):
        assert mine.loss == theirs.loss and mine.steps == theirs.steps
        assert mine.end_reason == theirs.end_reason and mine.metrics == theirs.metrics
        assert mine.n_children == theirs.n_children and mine.is_solution == theirs.is_solution
        theta = frontier.storage.node_theta(mine.id)
        assert theta is not None and torch.equal(theta, theirs.theta)
    sols = frontier.storage.solutions(job_id)
    assert [s.key for s in sols] == [n.key for n in ref.solutions]
    record = frontier.storage.get_job(job_id)
    assert record is not None and record.status == "succeeded"
    assert record.stopped_by == ref.stopped_by and record.steps == ref.steps


# One order and budget per frontier keeps the suite fast; the synthetic contract tests cover
# every order on every frontier.
CASES = [
    ("memory", "random", {"max_nodes": 7}),
    ("sqlite", "dfs", {"max_steps": 6}),
    pytest.param("postgres", "priority", {"max_nodes": 5}, marks=PG),
    ("fakeredis", "bfs", {"max_steps": 6}),
    pytest.param("redis", "random", {"max_steps": 6}, marks=[PG, pytest.mark.redis]),
]


@pytest.mark.parametrize(("kind", "order", "budget"), CASES)
def test_one_worker_matches_run_search(
    kind: str, order: str, budget: dict[str, int], request: pytest.FixtureRequest
) -> None:
    frontier = make_frontier(kind, request)
    s = settings(order=order, **budget)
    job = jobs.submit(frontier.storage, frontier, "tree-rl", PARAMS, s, seed=11)
    Worker(frontier, job_id=job.id).run()
    assert_same_tree(frontier, job.id, run_search(PROBLEM, s, seed=11))
    frontier.close()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=PG)])
@pytest.mark.parametrize("order", ["bfs", "dfs"])
@pytest.mark.parametrize("batch", [2, "auto"])
def test_several_workers_grow_the_same_tree(
    kind: str, order: str, batch: int | str, request: pytest.FixtureRequest
) -> None:
    frontier = make_frontier(kind, request)
    s = settings(order=order, max_nodes=7)
    job = jobs.submit(frontier.storage, frontier, "tree-rl", PARAMS, s, seed=4)
    import threading

    workers = [Worker(frontier, job_id=job.id, batch=batch) for _ in range(3)]  # type: ignore[arg-type]
    threads = [threading.Thread(target=w.run) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert_same_tree(frontier, job.id, run_search(PROBLEM, s, seed=4))


def crashing_worker(url: str, job_id: int, after: int) -> None:
    frontier = DatabaseFrontier(SQLStorage(url, migrate=False))

    def on_node(node: object, steps: int) -> None:
        if worker.completed >= after:  # die holding a fresh lease
            frontier.claim(f"{socket.gethostname()}:{os.getpid()}:x", 1, job_id=job_id)
            os.kill(os.getpid(), signal.SIGKILL)

    worker = Worker(frontier, job_id=job_id, on_node=on_node)
    worker.run()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=PG)])
def test_a_job_resumes_where_its_killed_process_stopped(
    kind: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("sqlite_url" if kind == "sqlite" else "pg_url")
    frontier = DatabaseFrontier(SQLStorage(url))
    s = settings(order="bfs", max_nodes=9)
    job = jobs.submit(frontier.storage, frontier, "tree-rl", PARAMS, s, seed=8)
    proc = CTX.Process(target=crashing_worker, args=(url, job.id, 3))
    proc.start()
    proc.join(60)
    assert proc.exitcode == -signal.SIGKILL
    assert frontier.storage.count_nodes(job.id).get("leased") == 1
    t0 = time.time()
    resumed = jobs.resume(frontier.storage, frontier, job.id)  # the dead owner's lease is freed
    assert resumed.status == "running" and resumed.nodes >= 3
    Worker(frontier, job_id=job.id).run()
    assert time.time() - t0 < 30  # no waiting for the 60 s lease
    assert_same_tree(frontier, job.id, run_search(PROBLEM, s, seed=8))
