"""Redis is only an index: losing it (or a claimer's pop) never changes the tree."""

from __future__ import annotations

import time

import pytest

from ridgerider.core import RRSettings, run_search
from ridgerider.problems import create
from ridgerider.services import jobs
from ridgerider.services.frontier.redis import RedisFrontier
from ridgerider.workers.worker import Worker

from .conftest import PG, REDIS, make_frontier, wipe
from .synthetic import drain, expansion, reference, submit, tree_keys

KINDS = ["fakeredis", pytest.param("redis", marks=[PG, REDIS])]
PARAMS = {"depth": 6, "tree_seed": 2}
PROBLEM = create("tree-rl", PARAMS)


@pytest.fixture(params=KINDS)
def frontier(request: pytest.FixtureRequest) -> RedisFrontier:
    fr = make_frontier(request.param, request)
    assert isinstance(fr, RedisFrontier)
    return fr


@pytest.mark.parametrize("order", ["bfs", "random"])
def test_redis_flushed_mid_job_gives_the_same_tree(frontier: RedisFrontier, order: str) -> None:
    s = RRSettings(**{**PROBLEM.default_settings(), "order": order, "max_nodes": 9})
    job = jobs.submit(frontier.storage, frontier, "tree-rl", PARAMS, s, seed=21)
    flushed: list[int] = []

    def on_node(node: object, steps: int) -> None:
        if len(flushed) < 2 and worker.completed in (2, 5):
            wipe(frontier.redis, frontier.ns)
            flushed.append(worker.completed)

    worker = Worker(frontier, job_id=job.id, on_node=on_node)
    worker.run()
    assert flushed == [2, 5]
    ref = run_search(PROBLEM, s, seed=21)
    assert [n.key for n in frontier.storage.iter_nodes(job.id)] == [n.key for n in ref.nodes]
    kinds = [e.kind for e in frontier.storage.list_events(job.id).items]
    assert kinds.count("redis_rebuilt") == 3  # the empty Redis at start, then each flush


def test_a_claimer_dying_between_pop_and_lease_loses_nothing(frontier: RedisFrontier) -> None:
    frontier.grace_ms = 200
    job = submit(frontier)
    assert frontier.rebuild()  # a fresh Redis: index the root
    keys = [frontier._key("epoch"), frontier._key("jobs"), frontier._key("claiming")]
    popped = frontier._claim(keys=keys, args=[1, job, frontier.ns, frontier.grace_ms])
    assert popped  # popped from Redis, never leased in the database
    assert frontier.claim("w", 1, job_id=job) == []
    time.sleep(0.3)
    frontier.tick()
    assert drain(frontier, job, fanout=2, depth=2) == reference("bfs", fanout=2, depth=2)


def test_admissions_lost_before_indexing_are_resynchronised(
    frontier: RedisFrontier, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = submit(frontier)
    (root,) = frontier.claim("w", 1, job_id=job)
    with monkeypatch.context() as m:  # the worker dies between commit and indexing
        m.setattr(frontier, "_admitted", lambda *a: None)
        assert frontier.complete(root, expansion(root.branch, fanout=3, depth=1))
    assert frontier.claim("w", 1, job_id=job) == []
    frontier.tick()
    drain(frontier, job, fanout=3, depth=1)
    assert tree_keys(frontier, job) == reference("bfs", fanout=3, depth=1)
