"""The lean archive: θ stored once per node, ridden and finished branches cut to their headers.

A child branch's θ is its parent's end θ (claims read it from the parent's row); a succeeded
job's branches keep only their headers, and extending it recomputes the ridges of the ones it
then rides (``core.expand.restore``): the extended tree is the tree a run with the larger budget
from the start computes, bit for bit.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
import torch
from sqlalchemy import select

from ridgerider.core import RRSettings, run_search
from ridgerider.core.expand import expand
from ridgerider.problems import create
from ridgerider.schemas.enums import NodeStatus
from ridgerider.services import jobs
from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.frontier.memory import MemoryFrontier
from ridgerider.services.storage.base import Storage
from ridgerider.services.storage.memory import InMemoryStorage
from ridgerider.services.storage.sql import SQLStorage
from ridgerider.services.storage.tables import NODES
from ridgerider.workers import runner
from ridgerider.workers.worker import Worker

from .conftest import PG

PARAMS = {"depth": 6, "tree_seed": 2}
PROBLEM = create("tree-rl", PARAMS)
SMALL, LARGE = 5, 14


def settings(**kw: Any) -> RRSettings:
    return RRSettings(**{**PROBLEM.default_settings(), **kw})


def header_only(data: bytes) -> bool:
    """Whether a branch record is its header alone (no θ, no ridge), in either format."""
    if data[:4] == b"RRB2":  # 42 bytes of fixed fields (the last: the depth), u32 per choice
        (depth,) = struct.unpack("<I", data[42:46])
        return len(data) == 46 + 4 * depth
    (hlen,) = struct.unpack("<I", data[4:8])
    return len(data) == 8 + hlen


def rows(store: SQLStorage, job_id: int) -> list[Any]:
    n = NODES.c
    with store.db.session(write=False) as s:
        stmt = select(n.id, n.key, n.status, n.parent_id, n.branch_data, n.branch_ref)
        return list(s.execute(stmt.where(n.job_id == job_id).order_by(n.id)))


def same_tree(store: Storage, job_id: int, ref: Storage, ref_job: int) -> None:
    """Every node of the two jobs alike: keys in tree order, θ bit for bit, losses, traces."""
    mine = store.list_nodes(job_id, tree=True, limit=10_000).items
    theirs = ref.list_nodes(ref_job, tree=True, limit=10_000).items
    assert [r.key for r in mine] == [r.key for r in theirs]
    for a, b in zip(mine, theirs, strict=True):
        ta, tb = store.node_theta(a.id), ref.node_theta(b.id)
        assert ta is not None and tb is not None and torch.equal(ta, tb), a.key
        assert (a.loss, a.loss_start, a.eigenvalue, a.steps) == (
            b.loss,
            b.loss_start,
            b.eigenvalue,
            b.steps,
        ), a.key
        assert a.trace == b.trace, a.key


def same_as_search(store: Storage, job_id: int, s: RRSettings, seed: int) -> None:
    """The job's tree is ``core.run_search``'s (the in-memory reference)."""
    ref = run_search(PROBLEM, s, seed=seed).nodes
    page = store.list_nodes(job_id, tree=True, limit=10_000).items
    assert [r.key for r in page] == [n.key for n in ref]
    for record, node in zip(page, ref, strict=True):
        theta = store.node_theta(record.id)
        assert theta is not None and torch.equal(theta, node.theta), record.key
        assert record.loss == node.loss and record.trace["losses"] == node.losses, record.key


@pytest.mark.parametrize("order", ["bfs", "priority"])
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=PG)])
def test_extend_of_a_compacted_job_is_the_larger_budgets_tree(
    kind: str, order: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = request.getfixturevalue("sqlite_url" if kind == "sqlite" else "pg_url")
    small = runner.run(
        jobs.Submission.build("tree-rl", PARAMS, settings(order=order, max_nodes=SMALL), seed=4),
        database_url=url,
    )
    job_id = small["job_id"]
    store = SQLStorage(url)
    before = rows(store, job_id)
    waiting = {r.key for r in before if r.status == NodeStatus.WAITING}
    assert waiting and small["nodes"] == SMALL
    for r in before:  # compacted: every row is its header (the root's θ is its own end θ)
        assert r.branch_ref is None
        assert header_only(bytes(r.branch_data)), r.key
    root = next(r for r in before if r.parent_id is None)
    mis, theta = store.node_branch(root.id), store.node_theta(root.id)
    assert mis is not None and theta is not None and torch.equal(mis.theta, theta)
    kid = next(r for r in before if r.key in waiting)
    branch = store.node_branch(kid.id)
    assert branch is not None and branch.direction is None and branch.parent_seed is not None

    runner.extend(job_id, max_nodes=LARGE, database_url=url)
    job = store.get_job(job_id)
    assert job is not None and job.nodes == LARGE and job.status == "succeeded"
    ridden = {r.key for r in store.list_nodes(job_id, tree=True, limit=10_000).items}
    assert waiting & ridden, "the extension rode branches that had been compacted"

    other_url = f"sqlite:///{tmp_path / 'whole.db'}" if kind == "sqlite" else url
    whole = runner.run(
        jobs.Submission.build("tree-rl", PARAMS, settings(order=order, max_nodes=LARGE), seed=4),
        database_url=other_url,
    )
    other = SQLStorage(other_url)
    same_tree(store, job_id, other, whole["job_id"])
    same_as_search(store, job_id, settings(order=order, max_nodes=LARGE), 4)
    store.close()
    other.close()


def _work(frontier: MemoryFrontier, job_id: int) -> None:
    Worker(frontier, job_id=job_id).run()


def test_memory_storage_compacts_and_extends_alike() -> None:
    store = InMemoryStorage()
    frontier = MemoryFrontier(store)
    job = jobs.submit(store, frontier, "tree-rl", PARAMS, settings(max_nodes=SMALL), seed=6)
    _work(frontier, job.id)
    kids = [r for r in store.nodes.values() if r.job_id == job.id and r.parent_id is not None]
    assert kids and all(header_only(r.branch_data) for r in kids)
    assert jobs.extend(store, frontier, job.id, max_nodes=LARGE)
    _work(frontier, job.id)
    same_as_search(store, job.id, settings(max_nodes=LARGE), 6)


@pytest.mark.parametrize("end", ["cancelled", "failed"])
def test_a_job_that_did_not_succeed_keeps_its_ridges(end: str, sqlite_url: str) -> None:
    """``resume`` rides its waiting branches next: restoring each would be work for nothing."""
    store = SQLStorage(sqlite_url)
    frontier = DatabaseFrontier(store)
    s = settings(max_nodes=50)
    job = jobs.submit(store, frontier, "tree-rl", PARAMS, s, seed=1)
    (lease,) = frontier.claim("w", 1, job_id=job.id)
    assert frontier.complete(lease, expand(PROBLEM, s, lease.branch))
    assert store.transition(job.id, end, error="stop" if end == "failed" else None)
    root_theta = store.node_theta(lease.node_id)
    waiting = [r for r in rows(store, job.id) if r.status == NodeStatus.WAITING]
    assert waiting and root_theta is not None
    for r in waiting:  # stored without θ (the root's end θ), with its ridge
        branch = store.node_branch(r.id)
        assert branch is not None and branch.direction is not None
        assert torch.equal(branch.theta, root_theta)
        assert len(bytes(r.branch_data)) < 8 + 400 + 8 * root_theta.numel() * 2
    frontier.close()
    store.close()


def test_a_compacted_sqlite_archive_gives_its_free_pages_back(sqlite_url: str) -> None:
    out = runner.run(
        jobs.Submission.build("tree-rl", PARAMS, settings(max_nodes=SMALL), seed=4),
        database_url=sqlite_url,
    )
    assert out["status"] == "succeeded"
    store = SQLStorage(sqlite_url)
    with store.db.session(write=False) as s:
        conn = s.connection()
        assert conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() == 2  # incremental
        assert conn.exec_driver_sql("PRAGMA freelist_count").scalar() == 0
    store.close()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=PG)])
def test_compaction_drops_large_branches_and_their_artifacts(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """Branches over the inline limit live in ``artifacts``: a ride or compaction deletes them."""
    from sqlalchemy import func

    from ridgerider.services.storage.tables import ARTIFACTS, INLINE_LIMIT

    from .synthetic import expansion, ridden_root
    from .test_storage_contract import spec

    store = SQLStorage(request.getfixturevalue("sqlite_url" if kind == "sqlite" else "pg_url"))
    frontier = DatabaseFrontier(store)
    theta = torch.arange(INLINE_LIMIT // 8 + 1, dtype=torch.float64)
    job_id = ridden_root(frontier, spec(), theta, [theta + i for i in range(2)])

    def blobs() -> int:
        with store.db.session(write=False) as s:
            return s.execute(select(func.count()).select_from(ARTIFACTS)).scalar_one()

    assert blobs() == 3  # its end θ and two ridges: the ridden root's branch kept its header
    (kid,) = frontier.claim("w", 1, job_id=job_id)
    assert kid.branch_ref is not None
    assert torch.equal(kid.branch.theta, theta) and kid.branch.direction is not None
    assert torch.equal(kid.branch.direction, theta + kid.branch.fingerprint[0][0])
    done = expansion(kid.branch, fanout=0)
    done.node.theta = theta
    assert frontier.complete(kid, done)
    assert blobs() == 2  # the ridden child's ridge went with its ride
    assert store.transition(job_id, "succeeded")
    assert blobs() == 1  # the root's end θ is left; compaction took the unridden ridge
    for r in rows(store, job_id):
        if r.parent_id is not None:
            assert r.branch_ref is None and header_only(bytes(r.branch_data)), r.key
    frontier.close()
    store.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite", pytest.param("postgres", marks=PG)])
def test_children_pushed_once_the_budget_is_full_are_headers(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """Only ``extend`` could admit them: their ridges are not written at all."""
    from .conftest import make_frontier

    frontier = make_frontier(kind, request)
    store = frontier.storage
    s = settings(max_nodes=3)
    job = jobs.submit(store, frontier, "tree-rl", PARAMS, s, seed=4)
    (root,) = frontier.claim("w", 1, job_id=job.id)
    assert frontier.complete(root, expand(PROBLEM, s, root.branch))
    first, _ = frontier.claim("w", 2, job_id=job.id)  # ranks 1 and 2: the budget is full
    late = expand(PROBLEM, s, first.branch)
    assert late.children and frontier.complete(first, late)
    assert store.get_job(job.id).status == "running"  # type: ignore[union-attr]
    kids = [n for n in store.iter_nodes(job.id, tree=False) if n.parent_id == first.node_id]
    assert len(kids) == len(late.children)
    for n in kids:
        branch = store.node_branch(n.id)
        assert branch is not None and branch.compacted and branch.parent_seed == first.branch.seed
    early = [
        n
        for n in store.iter_nodes(job.id, tree=False)
        if n.parent_id == root.node_id and n.status != "done"
    ]  # pushed before the budget was full: written whole
    assert early and all(store.node_branch(n.id).direction is not None for n in early)  # type: ignore[union-attr]
    frontier.close()
    store.close()
