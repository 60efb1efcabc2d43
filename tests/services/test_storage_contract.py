"""One contract for every storage: in-memory, SQLite, PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from ridgerider.services.frontier.base import Frontier
from ridgerider.services.storage.base import Storage
from ridgerider.services.storage.models import utcnow
from ridgerider.services.storage.records import TREE_COLUMNS, DuplicateJobError, JobSpec
from ridgerider.services.storage.sql import SQLStorage

from .conftest import PG
from .synthetic import MIS, THETA, Branch, expansion, submit


def spec(**kw: object) -> JobSpec:
    base: dict[str, object] = {
        "problem": "toy2d",
        "params": {"a": 2.0},
        "seed": 7,
        "settings": {
            "order": "bfs",
            "max_nodes": 10,
            "max_steps": 100,
            "max_ride_steps": 5,
            "method": "exact",
        },
        "mis": MIS,
    }
    return JobSpec(**(base | kw))  # type: ignore[arg-type]


def root() -> Branch:
    return Branch(THETA, None, None, (), 7, 0.0)


def test_users_and_tokens(storage: Storage) -> None:
    alice = storage.create_user("alice", is_admin=True)
    assert storage.get_user(alice.id) == alice
    with pytest.raises(ValueError, match="exists"):
        storage.create_user("alice")
    token, secret = storage.create_token(alice.id, "laptop")
    assert secret.startswith("rr_") and token.prefix == secret[:10]
    assert storage.verify_token(secret) == alice
    assert storage.verify_token(secret + "x") is None
    _, old = storage.create_token(alice.id, "old", expires_at=utcnow() - timedelta(1))
    assert storage.verify_token(old) is None
    assert storage.revoke_token(token.id)
    assert not storage.revoke_token(token.id)
    assert storage.verify_token(secret) is None
    with pytest.raises(ValueError):
        storage.create_token(10_000, "nobody")
    demoted = storage.set_admin(alice.id, False)
    assert not demoted.is_admin and storage.get_user(alice.id) == demoted
    assert storage.set_admin(alice.id, True).is_admin
    with pytest.raises(ValueError):
        storage.set_admin(10_000, True)


def test_users_by_name_and_tokens_by_secret(storage: Storage) -> None:
    carol = storage.create_user("carol")
    assert storage.get_user_by_name("carol") == carol
    assert storage.get_user_by_name("nobody") is None
    token, secret = storage.create_token(carol.id, "ci")
    assert storage.find_token(secret) == token
    assert storage.find_token(secret + "x") is None
    storage.revoke_token(token.id)
    found = storage.find_token(secret)
    assert found is not None and found.id == token.id and found.revoked_at is not None


def test_idempotency_key_is_unique_per_owner(storage: Storage) -> None:
    ann = storage.create_user("ann")
    ben = storage.create_user("ben")
    first = storage.create_job(spec(owner_id=ann.id, idempotency_key="k1"), root())
    assert storage.find_job(ann.id, "k1") == first
    assert storage.find_job(ben.id, "k1") is None
    with pytest.raises(DuplicateJobError):
        storage.create_job(spec(owner_id=ann.id, idempotency_key="k1"), root())
    assert [j.id for j in storage.list_jobs(owner_id=ann.id).items] == [first.id]
    other = storage.create_job(spec(owner_id=ben.id, idempotency_key="k1"), root())
    assert storage.find_job(ben.id, "k1") == other
    storage.create_job(spec(owner_id=ann.id), root())  # no key: never a duplicate
    storage.create_job(spec(owner_id=ann.id), root())
    assert len(storage.list_jobs(owner_id=ann.id).items) == 3


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=PG)])
def test_token_secret_is_not_stored(kind: str, request: pytest.FixtureRequest) -> None:
    storage = SQLStorage(request.getfixturevalue("sqlite_url" if kind == "sqlite" else "pg_url"))
    user = storage.create_user("bob")
    _, secret = storage.create_token(user.id, "ci")
    from sqlalchemy import select

    from ridgerider.services.storage.tables import TOKENS

    with storage.db.session(write=False) as s:
        stored = s.execute(select(TOKENS.c.token_hash)).scalar_one()
    assert secret not in stored and len(stored) == 64
    storage.close()


def test_job_lifecycle_is_compare_and_set(storage: Storage) -> None:
    owner = storage.create_user("carol")
    job = storage.create_job(spec(owner_id=owner.id), root())
    assert job.status == "queued" and job.nodes == 0 and job.owner_id == owner.id
    assert job.params == {"a": 2.0} and job.mis["negative_eigenvalues"] == 2
    assert not storage.transition(job.id, "succeeded")  # queued → succeeded is not allowed
    assert storage.transition(job.id, "running")
    assert not storage.transition(job.id, "running")  # already running: the CAS fails
    running = storage.get_job(job.id)
    assert running is not None and running.started_at is not None
    assert running.segment_start is not None
    assert storage.transition(job.id, "failed", error="boom")
    failed = storage.get_job(job.id)
    assert failed is not None and failed.status == "failed" and failed.error == "boom"
    assert failed.finished_at is not None and failed.segment_start is None
    assert failed.active_s >= 0
    assert storage.transition(job.id, "running")  # resume
    assert storage.transition(job.id, "cancelled")
    kinds = [e.kind for e in storage.list_events(job.id).items]
    assert kinds == ["created", "running", "failed", "running", "cancelled"]
    assert storage.get_job(99_999) is None


def test_extend_only_grows(storage: Storage) -> None:
    job = storage.create_job(spec(), root())
    with pytest.raises(ValueError, match="only grow"):
        storage.extend_job(job.id, max_nodes=1)
    assert not storage.extend_job(job.id, max_nodes=20)  # queued: nothing runs yet
    extended = storage.get_job(job.id)
    assert extended is not None and extended.settings["max_nodes"] == 20


def test_list_jobs_paginates_newest_first(storage: Storage) -> None:
    ids = [storage.create_job(spec(seed=i), root()).id for i in range(5)]
    storage.transition(ids[1], "running")
    first = storage.list_jobs(limit=2)
    assert [j.id for j in first.items] == ids[::-1][:2]
    second = storage.list_jobs(limit=2, cursor=first.next_cursor)
    assert [j.id for j in second.items] == ids[::-1][2:4]
    last = storage.list_jobs(limit=2, cursor=second.next_cursor)
    assert [j.id for j in last.items] == ids[:1] and last.next_cursor is None
    assert [j.id for j in storage.list_jobs(status="running").items] == [ids[1]]


def test_events_paginate(storage: Storage) -> None:
    job = storage.create_job(spec(), root())
    for i in range(5):
        storage.add_event(job.id, "note", {"i": i})
    page = storage.list_events(job.id, limit=4)
    rest = storage.list_events(job.id, cursor=page.next_cursor, limit=4)
    assert [e.data.get("i") for e in page.items + rest.items] == [None, 0, 1, 2, 3, 4]
    assert rest.next_cursor is None


def test_root_branch_round_trips(storage: Storage) -> None:
    job = storage.create_job(spec(), root())
    rows = storage.list_nodes(job.id, tree=False).items
    assert len(rows) == 1 and rows[0].key == "" and rows[0].status == "waiting"
    branch = storage.node_branch(rows[0].id)
    assert branch is not None and branch.seed == 7 and branch.theta.equal(THETA)
    assert storage.node_theta(rows[0].id) is None  # not ridden yet
    assert storage.count_nodes(job.id) == {"waiting": 1}
    assert storage.solutions(job.id) == []


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=PG)])
def test_large_tensors_go_to_the_artifact_store(kind: str, request: pytest.FixtureRequest) -> None:
    import torch
    from sqlalchemy import func, select

    from ridgerider.services.frontier.database import DatabaseFrontier
    from ridgerider.services.storage.tables import ARTIFACTS, INLINE_LIMIT, NODES

    from .synthetic import expansion

    store = SQLStorage(request.getfixturevalue("sqlite_url" if kind == "sqlite" else "pg_url"))
    theta = torch.arange(INLINE_LIMIT // 8 + 1, dtype=torch.float64)  # just over the limit
    job = store.create_job(spec(), Branch(theta, None, None, (), 7, 0.0))
    frontier = DatabaseFrontier(store)
    assert store.transition(job.id, "running")
    frontier.advance(job.id)
    (lease,) = frontier.claim("w", 1, job_id=job.id)
    assert torch.equal(lease.branch.theta, theta)
    exp = expansion(lease.branch, fanout=0)
    exp.node.theta = theta
    assert frontier.complete(lease, exp)
    node = store.list_nodes(job.id).items[0]
    loaded = store.node_theta(node.id)
    assert loaded is not None and torch.equal(loaded, theta)
    with store.db.session(write=False) as s:
        row = s.execute(select(NODES.c.branch_data, NODES.c.branch_ref, NODES.c.theta_ref)).one()
        blobs = s.execute(select(func.count()).select_from(ARTIFACTS)).scalar_one()
    # Ridden, the root's record keeps its header: its θ is the row's end θ (an artifact).
    assert row.branch_data is not None and row.branch_ref is None
    assert row.theta_ref and blobs == 1
    store.close()


def test_names_and_tags_are_stored_and_filter_the_listing(storage: Storage) -> None:
    a = storage.create_job(spec(name="Lever sweep A", tags=("paper", "fig2")), root()).id
    b = storage.create_job(spec(name="lever sweep b", tags=("fig2",), problem="lever"), root()).id
    c = storage.create_job(spec(), root()).id
    job = storage.get_job(a)
    assert job is not None and job.name == "Lever sweep A" and job.tags == ("paper", "fig2")
    assert storage.get_job(c).tags == () and storage.get_job(c).name is None  # type: ignore[union-attr]

    def ids(**kw: object) -> list[int]:
        return [j.id for j in storage.list_jobs(**kw).items]  # type: ignore[arg-type]

    assert ids(name="SWEEP") == [b, a]  # a case-insensitive substring
    assert ids(name="%") == [] and ids(name="_") == []  # wildcards are literal
    assert ids(tag="fig2") == [b, a] and ids(tag="paper") == [a] and ids(tag="fig") == []
    assert ids(problem="lever") == [b] and ids(problem="toy2d", tag="fig2") == [a]
    assert ids(tag="fig2", limit=1) == [b]


def test_delete_removes_the_job_and_fences_its_workers(frontier: Frontier) -> None:
    store = frontier.storage
    keep, gone = submit(frontier), submit(frontier)
    for job_id in (keep, gone):
        (root_lease,) = frontier.claim("w", 1, job_id=job_id)
        assert frontier.complete(root_lease, expansion(root_lease.branch, fanout=2))
        (leaf,) = frontier.claim("w", 1, job_id=job_id)
        assert frontier.complete(leaf, expansion(leaf.branch, depth=1))  # a solution leaf
    (held,) = frontier.claim("w", 1, job_id=gone)  # a worker rides a branch of the doomed job
    assert store.count_solutions([keep, gone, 999]) == {keep: 1, gone: 1, 999: 0}
    counted = store.get_job_counted(keep)
    assert counted is not None and counted == (store.get_job(keep), 1)
    assert store.get_job_counted(999) is None
    assert store.transition(gone, "cancelled") and store.delete_job(gone)
    assert not frontier.complete(held, expansion(held.branch, depth=1))
    assert store.get_job(gone) is None and not store.delete_job(gone)
    assert store.list_nodes(gone, tree=False).items == [] and store.solutions(gone) == []
    assert store.list_events(gone).items == [] and store.count_nodes(gone) == {}
    assert [j.id for j in store.list_jobs().items] == [keep]
    assert store.count_solutions([keep, gone]) == {keep: 1, gone: 0}
    assert frontier.claim("w", 5, job_id=gone) == []
    assert len(store.list_nodes(keep, tree=False).items) == 3  # the other job is untouched


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=PG)])
def test_delete_drops_only_the_blobs_no_other_job_uses(
    kind: str, request: pytest.FixtureRequest
) -> None:
    import torch
    from sqlalchemy import func, select

    from ridgerider.services.storage.tables import ARTIFACTS, INLINE_LIMIT

    store = SQLStorage(request.getfixturevalue("sqlite_url" if kind == "sqlite" else "pg_url"))
    shared = torch.arange(INLINE_LIMIT // 8 + 1, dtype=torch.float64)
    own = shared + 1.0
    a = store.create_job(spec(), Branch(shared, None, None, (), 7, 0.0)).id
    b = store.create_job(spec(), Branch(shared, None, None, (), 7, 0.0)).id
    c = store.create_job(spec(), Branch(own, None, None, (), 7, 0.0)).id

    def blobs() -> int:
        with store.db.session(write=False) as s:
            return s.execute(select(func.count()).select_from(ARTIFACTS)).scalar_one()

    assert blobs() == 2
    assert store.delete_job(a) and blobs() == 2  # job b still uses the shared blob
    assert store.delete_job(c) and blobs() == 1
    branch = store.node_branch(store.list_nodes(b, tree=False).items[0].id)
    assert branch is not None and torch.equal(branch.theta, shared)
    store.close()


def test_branch_counts_are_the_queue_and_the_leases_of_every_job(frontier: Frontier) -> None:
    store = frontier.storage
    assert store.branch_counts() == {}
    a, b = submit(frontier), submit(frontier)
    (root,) = frontier.claim("w", 1, job_id=a)
    assert store.branch_counts() == {("running", "leased"): 1, ("running", "waiting"): 1}
    assert frontier.complete(root, expansion(root.branch, fanout=2))
    frontier.claim("w", 1, job_id=a)
    assert store.transition(b, "cancelled")
    assert store.branch_counts() == {
        ("running", "leased"): 1,
        ("running", "waiting"): 1,
        ("cancelled", "waiting"): 1,
    }


def test_tree_rows_are_the_drawn_columns_of_the_finished_tree(frontier: Frontier) -> None:
    store = frontier.storage
    job_id = submit(frontier)
    (root_lease,) = frontier.claim("w", 1, job_id=job_id)
    assert frontier.complete(root_lease, expansion(root_lease.branch, fanout=2))
    (leaf,) = frontier.claim("w", 1, job_id=job_id)
    assert frontier.complete(leaf, expansion(leaf.branch, depth=1))
    nodes = store.list_nodes(job_id).items
    assert len(nodes) == 2
    first, rest = store.tree_rows(job_id, limit=1), store.tree_rows(job_id, cursor=1, limit=1)
    assert (first.next_cursor, rest.next_cursor) == (1, None)
    for row, node in zip(first.items + rest.items, nodes, strict=True):
        got = dict(zip(TREE_COLUMNS, row, strict=True))
        metrics = got.pop("metrics")
        assert got == {c: getattr(node, c) for c in TREE_COLUMNS if c != "metrics"}
        assert metrics is None or json.loads(metrics) == node.metrics
