"""Speculative claims: rides ahead of their turn never change the tree, and are capped."""

from __future__ import annotations

import heapq
import math
import random
import struct
import threading
import time

import pytest

from ridgerider.core.branch import Branch
from ridgerider.core.frontier import MemoryFrontier as CoreFrontier
from ridgerider.services import jobs
from ridgerider.services.frontier.base import Frontier, Lease
from ridgerider.services.frontier.speculation import spec_key

from .conftest import PG, make_frontier
from .synthetic import THETA, expansion, odd_losses, reference, submit, tree_keys

SHAPE = {"fanout": 3, "depth": 3}  # 40 nodes
KINDS = ["sqlite", pytest.param("postgres", marks=PG)]
BUDGETS = [{}, {"max_nodes": 11}, {"max_steps": 9}]


def ahead(frontier: Frontier, job_id: int) -> int:
    """Rows ridden or leased that the sequencer has not ranked."""
    with frontier.storage.db.session(write=False) as s:  # type: ignore[attr-defined]
        from sqlalchemy import text

        q = "SELECT count(*) FROM nodes WHERE job_id = :j AND rank IS NULL"
        q += " AND status IN ('leased', 'done')"
        return int(s.execute(text(q), {"j": job_id}).scalar_one())


def drive(frontier: Frontier, job_id: int, k: int) -> int:
    """Claim ``k`` at a time and complete each claim last-first (rides ahead land first).

    Returns how many speculative leases (no rank when claimed) were handed out. An admitted
    lease must always complete; a speculative one may be fenced off once the job ended.
    """
    speculative = 0
    while True:
        leases: list[Lease] = frontier.claim("w", k, job_id=job_id)
        if not leases:
            return speculative
        for lease in reversed(leases):
            ok = frontier.complete(lease, expansion(lease.branch, steps=2, **SHAPE))
            speculative += lease.rank is None
            assert ok or lease.rank is None


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("order", ["dfs", "priority", "random"])
@pytest.mark.parametrize("budget", BUDGETS, ids=["exhausted", "max_nodes", "max_steps"])
def test_rides_ahead_give_the_one_process_tree(
    kind: str, order: str, budget: dict[str, int], request: pytest.FixtureRequest
) -> None:
    frontier = make_frontier(kind, request, speculation=8)
    job = submit(frontier, order=order, seed=3, max_ride_steps=3, **budget)
    speculative = drive(frontier, job, k=4)
    assert speculative > 0
    assert tree_keys(frontier, job) == reference(order, 3, steps=2, **budget, **SHAPE)
    record = frontier.storage.get_job(job)
    assert record is not None and record.status == "succeeded"
    frontier.close()


@pytest.mark.parametrize("kind", KINDS)
def test_without_speculation_only_admitted_branches_are_claimed(
    kind: str, request: pytest.FixtureRequest
) -> None:
    frontier = make_frontier(kind, request, speculation=0)
    job = submit(frontier, order="dfs", seed=1)
    assert drive(frontier, job, k=4) == 0
    assert tree_keys(frontier, job) == reference("dfs", 1, **SHAPE)
    frontier.close()


@pytest.mark.parametrize("kind", KINDS)
def test_rides_ahead_are_capped(kind: str, request: pytest.FixtureRequest) -> None:
    frontier = make_frontier(kind, request, speculation=3)
    job = submit(frontier, order="random", seed=2)
    seen: list[int] = []
    for _ in range(6):  # hold every lease: one admitted, then rides ahead up to the cap
        held = []
        while got := frontier.claim("w", 1, job_id=job):
            held += got
            seen.append(ahead(frontier, job))
        assert sum(lease.rank is None for lease in held) <= 3
        for lease in held:
            assert frontier.complete(lease, expansion(lease.branch, **SHAPE))
    assert max(seen) == 3
    drive(frontier, job, k=1)
    assert tree_keys(frontier, job) == reference("random", 2, **SHAPE)
    frontier.close()


def admitted(frontier: Frontier, job_id: int) -> int:
    """The ranks the job has admitted so far."""
    with frontier.storage.db.session(write=False) as s:  # type: ignore[attr-defined]
        from sqlalchemy import text

        q = "SELECT admitted FROM jobs WHERE id = :j"
        return int(s.execute(text(q), {"j": job_id}).scalar_one())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("order", ["dfs", "priority", "random"])
def test_rides_ahead_stop_at_what_the_node_budget_still_admits(
    kind: str, order: str, request: pytest.FixtureRequest
) -> None:
    """A claim rides ahead only into the room the budget leaves (the cap is far above it)."""
    budget = 6
    frontier = make_frontier(kind, request, speculation=50)
    job = submit(frontier, order=order, seed=0, max_nodes=budget)
    grew = 0
    while True:
        before, room = ahead(frontier, job), budget - admitted(frontier, job)
        leases = frontier.claim("w", 8, job_id=job)
        if not leases:
            break
        after = ahead(frontier, job)
        assert after <= max(before, room), (before, room, after)
        grew += after > before
        for lease in reversed(leases):
            frontier.complete(lease, expansion(lease.branch, steps=2, **SHAPE))
    assert grew > 0  # it did ride ahead
    assert frontier.storage.count_nodes(job)["done"] - budget <= 3  # past the budget: 14 uncapped
    assert tree_keys(frontier, job) == reference(order, 0, steps=2, max_nodes=budget, **SHAPE)
    frontier.close()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", [1, 2, 4])
def test_a_claim_takes_the_admitted_rank_first_then_rides_ahead_for_the_rest(
    kind: str, k: int, request: pytest.FixtureRequest
) -> None:
    """On PostgreSQL both claims go out in one round trip; the split is the same."""
    frontier = make_frontier(kind, request, speculation=8)
    job = submit(frontier, order="dfs", seed=0)
    (root,) = frontier.claim("w", 4, job_id=job)  # the root alone: nothing else exists yet
    assert root.rank == 0 and frontier.complete(root, expansion(root.branch, **SHAPE))
    leases = frontier.claim("w", k, job_id=job)  # rank 1 is admitted, its two siblings wait
    assert [x.rank for x in leases] == [1] + [None] * min(k - 1, 2)
    assert len({x.node_id for x in leases}) == len(leases)
    assert ahead(frontier, job) == len(leases) - 1
    frontier.close()


@pytest.mark.parametrize("kind", KINDS)
def test_extending_a_job_uses_the_rides_it_made_ahead(
    kind: str, request: pytest.FixtureRequest
) -> None:
    frontier = make_frontier(kind, request, speculation=50)
    job = submit(frontier, order="dfs", seed=0, max_nodes=6)
    drive(frontier, job, k=8)
    counts = frontier.storage.count_nodes(job)
    wasted = counts.get("done", 0) - 6
    assert wasted > 0  # rides past the budget: waste for now, kept in the archive
    assert jobs.extend(frontier.storage, frontier, job, max_nodes=1000)
    drive(frontier, job, k=1)
    assert tree_keys(frontier, job) == reference("dfs", 0, **SHAPE)
    # Every row was ridden once: the rides ahead joined the tree instead of being redone.
    assert frontier.storage.count_nodes(job) == {"done": 40}
    frontier.close()


@pytest.mark.parametrize("kind", KINDS)
def test_threads_riding_ahead_give_the_one_process_tree(
    kind: str, request: pytest.FixtureRequest
) -> None:
    frontier = make_frontier(kind, request, speculation=16)
    job = submit(frontier, order="priority", seed=7, max_nodes=25)

    def work() -> None:  # as a Worker does: an empty claim is not the end of the job
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            record = frontier.storage.get_job(job)
            if record is None or record.status != "running":
                return
            drive(frontier, job, k=2)
            time.sleep(0.005)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert tree_keys(frontier, job) == reference("priority", 7, max_nodes=25, **SHAPE)
    frontier.close()


# -- the keys ----------------------------------------------------------------------------------


def _tree(fanout: int, depth: int) -> list[Branch]:
    """Every branch of a synthetic tree, parents before children."""
    out, todo = [], [Branch(THETA, None, None, (), 0, 0.0)]
    while todo:
        b = todo.pop(0)
        out.append(b)
        todo += expansion(b, fanout=fanout, depth=depth).children
    return out


def test_the_dfs_key_sorts_branches_in_the_order_dfs_expands_them() -> None:
    branches = _tree(4, 3)
    fr = CoreFrontier("dfs")
    fr.push([branches[0]])
    popped = []
    while len(fr):
        b = fr.pop()
        popped.append(b.key)
        fr.push(expansion(b, fanout=4, depth=3).children)
    assert [b.key for b in sorted(branches, key=lambda b: spec_key("dfs", b) or b"")] == popped


def test_the_priority_key_sorts_by_branch_loss_first() -> None:
    rng = random.Random(0)
    losses = [rng.uniform(-1e6, 1e6) for _ in range(200)] + [0.0, -0.0, 1e-300, -math.inf]
    losses += [math.inf, -1e-300, 5e-324]
    branches = [Branch(THETA, THETA, -1.0, ((i, 1),), i, x) for i, x in enumerate(losses)]
    keyed = sorted(branches, key=lambda b: spec_key("priority", b) or b"")
    assert [b.loss for b in keyed] == sorted(losses)
    unknown = Branch(THETA, THETA, -1.0, ((0, -1),), 1, None)
    assert (spec_key("priority", unknown) or b"") > max(
        spec_key("priority", b) or b"" for b in branches
    )
    assert spec_key("bfs", unknown) is None


def test_the_random_key_takes_shallow_branches_first() -> None:
    branches = _tree(3, 3)[1:]
    keyed = sorted(branches, key=lambda b: spec_key("random", b) or b"")
    depths = [b.depth for b in keyed]
    assert depths == sorted(depths)
    assert struct.unpack(">H", (spec_key("random", keyed[-1]) or b"")[1:3])[0] == 3
    assert len({spec_key("random", b) for b in branches}) == len(branches)
    # Within one depth the order is a fixed shuffle (a hash of the seed), not the push order.
    level = [b.key for b in keyed if b.depth == 2]
    assert level != sorted(level, key=lambda k: [int(c[:-1]) for c in k.split(".")])
    assert heapq.nsmallest(1, level) is not None


PLANS = [
    ("random", "given", 4),
    ("priority", "given", 4),
    # NaN after every number, NULL last: the plan sorts as the database will (five trees)
    *[("priority", "odd", seed) for seed in range(1, 6)],
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("order", "losses", "seed"), PLANS)
def test_the_plan_names_the_ranks_to_come(
    kind: str, order: str, losses: str, seed: int, request: pytest.FixtureRequest
) -> None:
    from sqlalchemy import text

    expand = odd_losses if losses == "odd" else expansion
    frontier = make_frontier(kind, request, speculation=6)
    job = submit(frontier, order=order, seed=seed)
    # random: every node in reach has three children (their number is predicted); priority:
    # rank 3's subtree, ranked first, is small.
    shape = {"fanout": 3, "depth": 8 if order == "random" else 3}
    for _ in range(3):  # the first ranks, one at a time
        (lease,) = frontier.claim("w", 1, job_id=job)
        assert frontier.complete(lease, expand(lease.branch, **shape))
    held = frontier.claim("w", 1, job_id=job)  # the admitted rank, kept in flight
    assert held[0].rank == 3
    # Rides ahead, done before their turn. random rides only planned rows: the first claim
    # finds no plan (one worker needs none) and makes one; the next takes its rows.
    ahead = frontier.claim("w", 4, job_id=job) or frontier.claim("w", 4, job_id=job)
    assert ahead and all(lease.rank is None for lease in ahead)
    for lease in ahead:
        assert frontier.complete(lease, expand(lease.branch, **shape))
    frontier.advance(job)  # a sequencer round plans the ranks after rank 3
    db = frontier.storage.db  # type: ignore[attr-defined]
    with db.session(write=False) as s:
        q = "SELECT id FROM nodes WHERE job_id = :j AND status = 'waiting'"
        waiting = set(s.execute(text(q), {"j": job}).scalars())
        q += " AND spec < :planned ORDER BY spec"
        planned = list(s.execute(text(q), {"j": job, "planned": b"\x01"}).scalars())
    assert len(planned) >= 3
    assert frontier.complete(held[0], expand(held[0].branch, **shape))
    ranked = []
    for _ in range(30):
        leases = frontier.claim("w", 1, job_id=job)
        if not leases:
            break
        (lease,) = leases
        assert lease.rank is not None
        ranked.append(lease.node_id)
        assert frontier.complete(lease, expand(lease.branch, **shape))
    # Ranks that go to branches opened later name no row at planning time (random: draws
    # that land on them; priority: the subtree of rank 3); among the rows that waited then,
    # the sequencer ranks exactly the plan, in its order.
    assert [i for i in ranked if i in waiting][: len(planned)] == planned
    frontier.close()
