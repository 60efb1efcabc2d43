"""One contract for every frontier: in-memory, database (SQLite, PostgreSQL), fakeredis, Redis."""

from __future__ import annotations

import time

import pytest
import torch

from ridgerider.services import jobs
from ridgerider.services.frontier.base import Frontier
from ridgerider.services.storage.records import RideProgress

from .conftest import PG, REDIS, make_frontier
from .synthetic import THETA, drain, expansion, reference, submit, tree_keys

ORDERS = ["bfs", "dfs", "priority", "random"]
SHAPE = {"fanout": 3, "depth": 3}


@pytest.mark.parametrize("order", ORDERS)
def test_claims_follow_the_search_order(frontier: Frontier, order: str) -> None:
    job = submit(frontier, order=order, seed=5)
    keys = drain(frontier, job, **SHAPE)
    assert keys == reference(order, 5, **SHAPE)
    assert tree_keys(frontier, job) == keys
    record = frontier.storage.get_job(job)
    assert record is not None and record.status == "succeeded"
    assert record.stopped_by == "exhausted" and record.nodes == 40


BUDGETS = [{"max_nodes": 7}, {"max_steps": 9}, {"max_nodes": 30, "max_steps": 12}]
SERVER_BUDGETS = dict(zip(ORDERS, [*BUDGETS, BUDGETS[0]], strict=True))
# Every order under every budget on the fast frontiers; one budget per order on the servers
# (the sequencer is shared code; the servers add only their storage).
BUDGET_CASES = [
    *[(k, o, b) for k in ("memory", "sqlite", "fakeredis") for o in ORDERS for b in BUDGETS],
    *[pytest.param("postgres", o, b, marks=PG) for o, b in SERVER_BUDGETS.items()],
    *[pytest.param("redis", o, b, marks=[PG, REDIS]) for o, b in SERVER_BUDGETS.items()],
]


@pytest.mark.parametrize(("kind", "order", "budget"), BUDGET_CASES)
def test_budgets_cut_the_same_prefix(
    kind: str, order: str, budget: dict[str, int], request: pytest.FixtureRequest
) -> None:
    frontier = make_frontier(kind, request)
    job = submit(frontier, order=order, seed=2, max_ride_steps=3, **budget)
    # Two leases in hand at once: the budget must not depend on how claims interleave.
    keys = drain(frontier, job, k=2, steps=2, **SHAPE)
    expected = reference(order, 2, steps=2, **budget, **SHAPE)
    assert sorted(keys) == sorted(expected)
    assert tree_keys(frontier, job) == expected
    record = frontier.storage.get_job(job)
    assert record is not None and record.status == "succeeded"
    assert record.stopped_by == ("max_nodes" if "max_steps" not in budget else "max_steps")
    frontier.close()


def test_a_finished_job_can_be_extended(frontier: Frontier) -> None:
    job = submit(frontier, order="priority", max_nodes=4)
    drain(frontier, job, **SHAPE)
    assert jobs.extend(frontier.storage, frontier, job, max_nodes=11)
    drain(frontier, job, **SHAPE)
    assert tree_keys(frontier, job) == reference("priority", 0, max_nodes=11, **SHAPE)
    assert jobs.extend(frontier.storage, frontier, job, max_nodes=1000)
    drain(frontier, job, **SHAPE)
    record = frontier.storage.get_job(job)
    assert record is not None and record.status == "succeeded" and record.nodes == 40
    assert record.stopped_by == "exhausted"
    assert not jobs.extend(frontier.storage, frontier, job, max_nodes=2000)  # nothing left


def test_completion_is_fenced_by_the_lease(frontier: Frontier) -> None:
    job = submit(frontier, lease_s=0.3)
    (stale,) = frontier.claim("slow", 1, job_id=job)
    assert stale.attempt == 1 and stale.rank == 0
    time.sleep(0.45)
    assert frontier.heartbeat([stale]) == [False]
    assert not frontier.complete(stale, expansion(stale.branch))  # expired: writes nothing
    assert frontier.reap() == 1
    (fresh,) = frontier.claim("fast", 1, job_id=job)
    assert fresh.node_id == stale.node_id and fresh.attempt == 2
    assert not frontier.complete(stale, expansion(stale.branch))  # old token
    assert frontier.complete(fresh, expansion(fresh.branch))
    assert not frontier.complete(fresh, expansion(fresh.branch))  # exactly once
    node = frontier.storage.get_node(fresh.node_id)
    assert node is not None and node.status == "done" and node.attempts == 2


def test_heartbeat_keeps_a_lease(frontier: Frontier) -> None:
    job = submit(frontier, lease_s=0.6)
    (lease,) = frontier.claim("w", 1, job_id=job)
    for _ in range(4):
        time.sleep(0.15)
        assert frontier.heartbeat([lease]) == [True]
    assert frontier.reap() == 0
    assert frontier.complete(lease, expansion(lease.branch))


def test_heartbeats_carry_ride_progress_to_the_archive(frontier: Frontier) -> None:
    """A held lease's reported steps and loss are visible in ``rides`` until it completes."""
    job = submit(frontier, lease_s=0.4, max_nodes=100)
    (root,) = frontier.claim("w", 1, job_id=job)
    assert frontier.complete(root, expansion(root.branch, 3))
    first, second = frontier.claim("w", 2, job_id=job)
    assert [r.steps for r in frontier.storage.rides(job)] == [0, 0]
    progress = {first.node_id: RideProgress(7, 0.25), second.node_id: RideProgress(2, None)}
    assert frontier.heartbeat([first, second], progress=progress) == [True, True]
    rides = {r.node_id: r for r in frontier.storage.rides(job)}
    assert (rides[first.node_id].steps, rides[first.node_id].loss) == (7, 0.25)
    assert (rides[second.node_id].steps, rides[second.node_id].loss) == (2, None)
    ride = rides[first.node_id]
    assert ride.worker == "w" and ride.attempts == 1 and ride.depth == 1
    assert ride.key == first.branch.key and ride.loss_start == first.branch.loss
    assert frontier.complete(first, expansion(first.branch))
    assert [r.node_id for r in frontier.storage.rides(job)] == [second.node_id]
    time.sleep(0.55)  # the second lease expires: its holder may no longer write progress
    assert frontier.heartbeat([second], progress={second.node_id: RideProgress(9, 1.0)}) == [False]
    assert frontier.reap() == 1
    assert frontier.storage.rides(job) == []
    (again,) = frontier.claim("v", 1, job_id=job)
    assert again.node_id == second.node_id and again.attempt == 2
    assert frontier.heartbeat([again], progress={again.node_id: RideProgress(0, None)}) == [True]
    (ride,) = frontier.storage.rides(job)
    assert (ride.worker, ride.steps, ride.loss, ride.attempts) == ("v", 0, None, 2)


def test_failures_dead_letter_and_fail_the_job(frontier: Frontier) -> None:
    job = submit(frontier, max_attempts=2)
    (first,) = frontier.claim("w", 1, job_id=job)
    assert frontier.fail(first, "RuntimeError: boom")
    node = frontier.storage.get_node(first.node_id)
    assert node is not None and node.status == "waiting" and node.last_error == "RuntimeError: boom"
    (second,) = frontier.claim("w", 1, job_id=job)
    assert second.attempt == 2
    assert frontier.fail(second, "RuntimeError: boom")
    record = frontier.storage.get_job(job)
    assert (
        record is not None
        and record.status == "failed"
        and "failed 2 times" in (record.error or "")
    )
    assert frontier.storage.count_nodes(job) == {"dead": 1}
    assert frontier.claim("w", 1, job_id=job) == []
    kinds = [e.kind for e in frontier.storage.list_events(job).items]
    assert "dead_letter" in kinds and kinds[-1] == "failed"
    resumed = jobs.resume(frontier.storage, frontier, job)
    assert resumed.status == "running"
    assert drain(frontier, job, **SHAPE) == reference("bfs", **SHAPE)


def test_reaper_thread_returns_expired_leases(frontier: Frontier) -> None:
    job = submit(frontier, lease_s=0.2)
    (lease,) = frontier.claim("doomed", 1, job_id=job)
    frontier.start_reaper(interval=0.05)
    deadline = time.time() + 5
    while frontier.storage.count_nodes(job) != {"waiting": 1} and time.time() < deadline:
        time.sleep(0.05)
    frontier.stop_reaper()
    assert frontier.storage.count_nodes(job) == {"waiting": 1}
    assert "leases_expired" in [e.kind for e in frontier.storage.list_events(job).items] or (
        frontier.storage.get_node(lease.node_id) is not None
    )
    (again,) = frontier.claim("next", 1, job_id=job)
    assert again.node_id == lease.node_id and again.attempt == 2


def test_children_are_inserted_idempotently(frontier: Frontier) -> None:
    job = submit(frontier)
    (lease,) = frontier.claim("w", 1, job_id=job)
    exp = expansion(lease.branch, fanout=3)
    assert frontier.complete(lease, exp)
    assert frontier.push(job, lease.node_id, exp.children) == 0
    assert frontier.push(job, lease.node_id, exp.children[:1] + exp.children) == 0
    assert sum(frontier.storage.count_nodes(job).values()) == 4


def test_completion_stores_node_children_and_solution(frontier: Frontier) -> None:
    job = submit(frontier)
    keys = drain(frontier, job, fanout=2, depth=1)
    assert keys == ["", "0+", "0-"]
    store = frontier.storage
    root, leaf, _ = list(store.iter_nodes(job))
    assert root.n_children == 2 and not root.is_leaf and root.end_reason == "convex"
    assert leaf.is_solution and leaf.solution_key == "0+" and leaf.metrics == {"depth": 1}
    assert leaf.fingerprint == ((0, 1),) and leaf.parent_id == root.id and leaf.rank == 1
    assert leaf.trace is not None and leaf.trace["losses"] == [leaf.loss]
    theta = store.node_theta(leaf.id)
    assert theta is not None and theta.tolist() == [0.0, 0.0]
    sols = store.solutions(job)
    assert [s.key for s in sols] == ["0+", "0-"] and sols[0].fingerprint == ((0, 1),)


def test_cancel_stops_claims_and_completions(frontier: Frontier) -> None:
    job = submit(frontier)
    (lease,) = frontier.claim("w", 1, job_id=job)
    assert jobs.cancel(frontier.storage, job)
    assert not frontier.complete(lease, expansion(lease.branch))
    assert frontier.claim("w", 1) == []


def test_claims_serve_the_oldest_job_first(frontier: Frontier) -> None:
    a = submit(frontier)
    b = submit(frontier)
    leases = frontier.claim("w", 3)
    assert [(x.job_id, x.rank) for x in leases] == [(a, 0), (b, 0)]
    for lease in leases:
        frontier.complete(lease, expansion(lease.branch))
    more = frontier.claim("w", 3)
    assert [(x.job_id, x.rank) for x in more] == [(a, 1), (a, 2), (b, 1)]


def test_workers_serve_only_jobs_of_their_accelerator(frontier: Frontier) -> None:
    gpu = submit(frontier, accelerator="gpu")
    cpu = submit(frontier)
    assert frontier.storage.get_job(gpu).accelerator == "gpu"  # type: ignore[union-attr]
    # A CPU worker skips the older GPU job, asked for it by id or not.
    assert [x.job_id for x in frontier.claim("c", 5)] == [cpu]
    assert frontier.claim("c", 5, job_id=gpu) == []
    (lease,) = frontier.claim("g", 5, accelerator="gpu")
    assert lease.job_id == gpu and lease.rank == 0
    assert frontier.claim("g", 5, accelerator="gpu") == []  # the CPU job's children wait
    assert frontier.complete(lease, expansion(lease.branch))
    assert {x.job_id for x in frontier.claim("g", 5, accelerator="gpu")} == {gpu}


def test_wall_time_stops_admission(frontier: Frontier) -> None:
    job = submit(frontier, wall_time_s=0.3, order="bfs")
    (root,) = frontier.claim("w", 1, job_id=job)
    frontier.complete(root, expansion(root.branch, fanout=3))
    (started,) = frontier.claim("w", 1, job_id=job)
    time.sleep(0.4)
    frontier.tick()
    assert frontier.claim("w", 1, job_id=job) == []  # not started: dropped
    assert frontier.complete(started, expansion(started.branch))
    record = frontier.storage.get_job(job)
    assert record is not None and record.status == "succeeded"
    assert record.stopped_by == "wall_time" and tree_keys(frontier, job) == ["", "0+"]


def test_tree_reads_paginate_in_rank_order(frontier: Frontier) -> None:
    job = submit(frontier, order="dfs")
    keys = drain(frontier, job, **SHAPE)
    pages, cursor = [], None
    while True:
        page = frontier.storage.list_nodes(job, cursor=cursor, limit=7)
        pages.append([n.key for n in page.items])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [k for p in pages for k in p] == keys and [len(p) for p in pages[:-1]] == [7] * 5
    every = list(frontier.storage.iter_nodes(job, tree=False, page=9))
    assert sorted(n.key for n in every) == sorted(keys)


def test_release_orphans_frees_leases_of_dead_local_processes(frontier: Frontier) -> None:
    import socket
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    job = submit(frontier, lease_s=600)
    (lease,) = frontier.claim(f"{socket.gethostname()}:{dead.pid}:x", 1, job_id=job)
    assert frontier.release_orphans(job) == 1
    (again,) = frontier.claim("me", 1, job_id=job)
    assert again.node_id == lease.node_id and again.attempt == 2


def test_complete_many_fences_each_branch(frontier: Frontier) -> None:
    job = submit(frontier, lease_s=30)
    (root,) = frontier.claim("w", 1, job_id=job)
    assert frontier.complete(root, expansion(root.branch, fanout=3))
    a, b, c = frontier.claim("w", 3, job_id=job)
    assert frontier.fail(b, "gave it back")  # b's lease is gone: its completion is refused
    results = frontier.complete_many([(x, expansion(x.branch, depth=1)) for x in (a, b, c)])
    assert results == [True, False, True]
    assert frontier.storage.count_nodes(job) == {"done": 3, "waiting": 1}
    drain(frontier, job, fanout=3, depth=1)
    assert tree_keys(frontier, job) == reference("bfs", fanout=3, depth=1)


def test_a_lease_listed_twice_is_recorded_once(frontier: Frontier) -> None:
    job = submit(frontier)
    (lease,) = frontier.claim("w", 1, job_id=job)
    exp = expansion(lease.branch, fanout=2)
    assert frontier.complete_many([(lease, exp), (lease, exp)]) == [True, False]
    assert frontier.storage.count_nodes(job) == {"done": 1, "waiting": 2}
    assert frontier.complete_many([]) == []


@pytest.mark.parametrize("moved", [False, True], ids=["branched", "moved"])
def test_a_ridden_root_still_gives_its_branch(frontier: Frontier, moved: bool) -> None:
    """The root's record drops θ (the MIS) only where its node kept it: θ is stored once."""
    job = submit(frontier)
    (lease,) = frontier.claim("w", 1, job_id=job)
    exp = expansion(lease.branch, fanout=2)
    if moved:  # a root that is a leaf polished away from the MIS
        exp.node.theta = THETA + 1
    assert frontier.complete(lease, exp)
    root = frontier.storage.node_branch(lease.node_id)
    assert root is not None and root.fingerprint == () and torch.equal(root.theta, THETA)
    theta = frontier.storage.node_theta(lease.node_id)
    assert theta is not None and torch.equal(theta, exp.node.theta)
    kids = [n for n in frontier.storage.iter_nodes(job, tree=False) if n.parent_id is not None]
    for kid in kids:  # the θ each child was pushed with (its own, or its parent's end θ)
        branch = frontier.storage.node_branch(kid.id)
        assert branch is not None and torch.equal(branch.theta, THETA)
    frontier.close()


def test_infinite_results_are_stored_as_such(frontier: Frontier) -> None:
    job = submit(frontier)
    (lease,) = frontier.claim("w", 1, job_id=job)
    exp = expansion(lease.branch, fanout=2, loss=float("-inf"))  # children's loss too
    exp.node.eigenvalue_end = float("inf")
    exp.node.losses = [0.0]  # JSON (the trace) has no infinities: only columns are tested
    assert frontier.complete(lease, exp)
    node = frontier.storage.get_node(lease.node_id)
    assert node is not None and node.loss == float("-inf") and node.eigenvalue_end == float("inf")
    kids = [n for n in frontier.storage.iter_nodes(job, tree=False) if n.parent_id == node.id]
    branches = [frontier.storage.node_branch(n.id) for n in kids]
    assert [b.loss for b in branches if b is not None] == [float("-inf")] * 2
