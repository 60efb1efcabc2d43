"""Large child branches live in the artifact store and leave it when ridden or when their job ends.

A child branch's record over ``tables.BRANCH_INLINE_LIMIT`` (its ridge: a problem of more than
~8,000 parameters) is stored as an artifact of its job's own (never shared with a rerun, so a
ride's deletion cannot race another job's reference); its completion keeps the header in the
row and deletes the blob, and the job's compaction deletes the unridden ones. On PostgreSQL
the job's end then gives the emptied table's space back (``frontier.pgcare.vacuum_artifacts``).
"""

from __future__ import annotations

import pytest
import torch
from sqlalchemy import select, text

from ridgerider.core.branch import Branch, child_seed
from ridgerider.services.frontier.base import Lease
from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.frontier.pgcare import ARTIFACT_SLACK
from ridgerider.services.storage.sql import SQLStorage
from ridgerider.services.storage.tables import ARTIFACTS, BRANCH_INLINE_LIMIT, INLINE_LIMIT

from .conftest import FRONTIERS, PG, make_frontier
from .synthetic import expansion, ridden_root
from .test_lean_archive import header_only, rows
from .test_storage_contract import spec

N = BRANCH_INLINE_LIMIT // 8 + 100
"""Parameters: a child's record (its ridge) just over the branch limit, θ well under the inline
limit (the root's record, θ only, stays inline)."""


def _theta() -> torch.Tensor:
    return torch.linspace(-1.0, 1.0, N, dtype=torch.float64)


def _big_job(frontier: DatabaseFrontier, children: int) -> int:
    """A job whose root is ridden and pushed ``children`` ridges of ``N`` parameters each."""
    theta = _theta()
    assert N * 8 < INLINE_LIMIT
    return ridden_root(frontier, spec(), theta, [theta * (i + 2) for i in range(children)])


def _ride(frontier: DatabaseFrontier, job_id: int) -> Lease:
    (kid,) = frontier.claim("w", 1, job_id=job_id)
    i = kid.branch.fingerprint[0][0]
    assert kid.branch.direction is not None
    assert torch.equal(kid.branch.direction, _theta() * (i + 2))  # the ridge, bit for bit
    done = expansion(kid.branch, fanout=0)
    done.node.theta = _theta()
    assert frontier.complete(kid, done)
    return kid


def _blobs(store: SQLStorage) -> set[str]:
    with store.db.session(write=False) as s:
        return set(s.execute(select(ARTIFACTS.c.sha256)).scalars())


@pytest.mark.parametrize("kind", [k for k in FRONTIERS if k != "memory"])
def test_a_large_branch_leaves_the_artifact_store_when_ridden(
    kind: str, request: pytest.FixtureRequest
) -> None:
    frontier = make_frontier(kind, request)  # the database's, or Redis in front of it
    assert isinstance(frontier, DatabaseFrontier)
    store = frontier.storage
    first = _big_job(frontier, children=2)
    again = _big_job(frontier, children=2)  # the same job again: the same ridges, bit for bit

    def refs(job_id: int) -> dict[str, str]:
        return {r.key: r.branch_ref for r in rows(store, job_id) if r.parent_id is not None}

    mine, theirs = refs(first), refs(again)
    assert all(mine.values()) and all(theirs.values()) and mine.keys() == theirs.keys()
    assert not set(mine.values()) & set(theirs.values())  # a job's own: never shared
    assert _blobs(store) == {*mine.values(), *theirs.values()}  # the roots stay inline
    ridden = _ride(frontier, first)
    assert ridden.branch_ref == mine[ridden.branch.key]
    row = next(r for r in rows(store, first) if r.key == ridden.branch.key)
    assert row.branch_ref is None and header_only(bytes(row.branch_data))
    assert _blobs(store) == {*mine.values(), *theirs.values()} - {ridden.branch_ref}
    twin = _ride(frontier, again)  # the rerun's copy of the same branch is untouched by it
    assert twin.branch.key == ridden.branch.key and twin.branch_ref == theirs[twin.branch.key]
    for job_id in (first, again):
        assert store.transition(job_id, "succeeded")  # compaction: the unridden ridge goes
    assert _blobs(store) == set()
    assert all(r.branch_ref is None for job in (first, again) for r in rows(store, job))
    frontier.close()
    store.close()


@PG
def test_a_finished_jobs_large_branches_give_their_space_back(pg_empty_url: str) -> None:
    """Ridden and compacted, the ridges' pages leave PostgreSQL's files when the job ends."""
    store = SQLStorage(pg_empty_url)
    frontier = DatabaseFrontier(store)

    def files() -> int:
        with store.db.session(write=False) as s:
            return int(s.execute(text("SELECT pg_table_size('artifacts')")).scalar_one())

    children = 2 * ARTIFACT_SLACK // BRANCH_INLINE_LIMIT  # twice the slack in ridges
    job_id = _big_job(frontier, children)
    assert files() > 2 * ARTIFACT_SLACK
    for _ in range(spec().settings["max_nodes"] - 1):  # the root and nine children: the budget
        _ride(frontier, job_id)
    job = store.get_job(job_id)
    assert job is not None and job.status == "succeeded" and job.stopped_by == "max_nodes"
    frontier.close()  # waits for the table care the job's end started
    assert _blobs(store) == set()
    assert files() < ARTIFACT_SLACK // 4, files()
    store.close()


def test_branch_records_over_the_branch_limit_go_to_artifacts() -> None:
    """The limit this file relies on: a child's record is its header and ridge."""
    theta = _theta()
    kid = Branch(theta, theta, -1.0, ((0, 1),), child_seed(7, (0, 1)), 0.0, parent_seed=7)
    assert BRANCH_INLINE_LIMIT < len(kid.to_bytes(theta=False)) < 2 * BRANCH_INLINE_LIMIT


@PG
def test_the_artifact_store_is_vacuumed_only_when_dead_space_passes_the_slack(
    pg_empty_url: str,
) -> None:
    import os

    from sqlalchemy import delete

    from ridgerider.services.frontier.pgcare import vacuum_artifacts
    from ridgerider.services.storage.tables import store_blob

    store = SQLStorage(pg_empty_url)
    with store.db.session() as s:  # 3 MiB of live blobs (random: TOAST cannot compress them)
        refs = [store_blob(s.connection(), os.urandom(1 << 20), 0)[1] for _ in range(3)]
    assert all(refs)
    assert vacuum_artifacts(store.db) is None  # all live: nothing to give back, nothing ran
    with store.db.session() as s:
        s.execute(delete(ARTIFACTS).where(ARTIFACTS.c.sha256.in_(refs[:2])))
    left = vacuum_artifacts(store.db)  # 2 MiB dead (ahead of the live blob): it runs
    assert left is not None and left[1] == 1 << 20
    assert vacuum_artifacts(store.db, left) == left  # nothing changed since: nothing runs
    with store.db.session() as s:
        s.execute(delete(ARTIFACTS))
    files, live = vacuum_artifacts(store.db, left) or (None, None)
    assert live == 0 and files is not None and files < ARTIFACT_SLACK // 4, files
    store.close()
