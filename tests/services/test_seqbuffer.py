"""Buffered sequencer rounds (``dfs``, ``priority``, ``random``): the plain store's ranks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ridgerider.core.branch import Branch
from ridgerider.core.expand import Expansion
from ridgerider.services.frontier import dbsequencer, seqbuffer
from ridgerider.services.frontier.base import Frontier
from ridgerider.services.frontier.seqbuffer import BufferedSeqStore
from ridgerider.services.frontier.sqlseq import SqlSeqStore

from .conftest import PG, make_frontier
from .synthetic import expansion, odd_losses, reference, submit, tree_keys

KINDS = ["sqlite", pytest.param("postgres", marks=PG)]
SHAPE = {"fanout": 3, "depth": 3}  # 40 nodes


@pytest.fixture
def stores(monkeypatch: pytest.MonkeyPatch) -> list[SqlSeqStore]:
    """Every store a sequencer round of this test used."""
    made: list[SqlSeqStore] = []
    real = dbsequencer.seq_store

    def spy(*args: object) -> SqlSeqStore:
        made.append(real(*args))  # type: ignore[arg-type]
        return made[-1]

    monkeypatch.setattr(dbsequencer, "seq_store", spy)
    return made


def drive(
    frontier: Frontier, job_id: int, k: int, expand: Callable[[Branch], Expansion] = expansion
) -> None:
    """Claim ``k`` at a time, complete last-first: rides ahead land before their turn."""
    while leases := frontier.claim("w", k, job_id=job_id):
        for lease in reversed(leases):
            frontier.complete(lease, expand(lease.branch))


def shaped(branch: Branch) -> Expansion:
    return expansion(branch, steps=2, **SHAPE)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("order", ["dfs", "priority", "random"])
@pytest.mark.parametrize("top", [2, seqbuffer.TOP], ids=["reads-again", "one-read"])
def test_buffered_rounds_give_the_one_process_tree(
    kind: str,
    order: str,
    top: int,
    stores: list[SqlSeqStore],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """With two open rows read at a time a round pops past its read and must read again
    (``dfs``, ``priority``); ``random`` moves slots in hand and writes them at the end."""
    monkeypatch.setattr(seqbuffer, "TOP", top)
    frontier = make_frontier(kind, request, speculation=16)
    job = submit(frontier, order=order, seed=3, max_ride_steps=3, max_nodes=31)
    drive(frontier, job, k=8, expand=shaped)
    assert tree_keys(frontier, job) == reference(order, 3, steps=2, max_nodes=31, **SHAPE)
    buffered = [s for s in stores if isinstance(s, BufferedSeqStore)]
    assert buffered and all(type(s) is BufferedSeqStore for s in stores)
    assert max(len(s.given) for s in buffered) > 1  # some round joined a chain of rides ahead
    frontier.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_chain_of_rides_ahead_joins_in_a_few_statements(
    kind: str, stores: list[SqlSeqStore], request: pytest.FixtureRequest
) -> None:
    """The plain store takes ~4 statements a rank; a buffered round, a few for the whole chain."""
    shape = {"fanout": 3, "depth": 4}  # 121 nodes
    frontier = make_frontier(kind, request, speculation=200)
    job = submit(frontier, order="dfs", seed=1)
    # Ride ahead with the sequencer held back (as when one round holds the job while workers
    # go on): claims are speculative, and every rank waits for the next round.
    frontier._sequence = lambda *args, **kwargs: None  # type: ignore[attr-defined]
    while leases := frontier.claim("w", 100, job_id=job):
        for lease in leases:
            assert frontier.complete(lease, expansion(lease.branch, **shape))
    del frontier._sequence  # type: ignore[attr-defined]
    frontier.advance(job)
    longest = max(
        (s for s in stores if isinstance(s, BufferedSeqStore)), key=lambda s: len(s.given)
    )
    assert len(longest.given) == 120  # every rank after the root's, in one round
    # The root's rank (given before the round), a read of children per level (0-4), the open
    # rows read once (the pushes written first) and the rows written: 10, not ~480.
    assert longest.statements <= shape["depth"] + 6
    drive(frontier, job, k=8, expand=lambda b: expansion(b, **shape))
    assert tree_keys(frontier, job) == reference("dfs", 1, **shape)
    frontier.close()


@pytest.mark.parametrize("kind", KINDS)
def test_random_rounds_draw_from_the_slots_read_once(
    kind: str, stores: list[SqlSeqStore], request: pytest.FixtureRequest
) -> None:
    """Rides ahead of a random job join in rounds of a few statements, whatever their length."""
    shape = {"fanout": 3, "depth": 4}
    frontier = make_frontier(kind, request, speculation=200)
    job = submit(frontier, order="random", seed=4)
    drive(frontier, job, k=16, expand=lambda b: expansion(b, **shape))
    assert tree_keys(frontier, job) == reference("random", 4, **shape)
    long = [s for s in stores if isinstance(s, BufferedSeqStore) and len(s.given) >= 8]
    assert long  # rounds that joined chains of rides ahead
    # A rank given before the round, children per level, the slots read once (the pushes
    # written first), the moved slots cleared and the rows written.
    assert max(s.statements for s in long) <= shape["depth"] + 7
    frontier.close()


def odd(branch: Branch) -> Expansion:
    """Children whose branch losses mix NaN, infinities, None, signed zeros and ties."""
    return odd_losses(branch, **SHAPE)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", [1, 8])
def test_priority_pops_odd_losses_as_the_database_sorts_them(
    kind: str, k: int, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """NaN after every number, NULL last, -0.0 equal to 0.0: the same ranks as the plain store."""
    trees = []
    for store in ("buffered", "plain"):
        if store == "plain":
            monkeypatch.setattr(
                dbsequencer, "seq_store", lambda sql, c, j, *_: SqlSeqStore(sql, c, j)
            )
        frontier = make_frontier(kind, request, speculation=16)
        job = submit(frontier, order="priority", seed=5)
        drive(frontier, job, k=k, expand=odd)
        trees.append(tree_keys(frontier, job))
        frontier.close()
    assert len(trees[0]) == 40
    assert trees[0] == trees[1]


@pytest.mark.parametrize("kind", KINDS)
def test_a_long_random_open_list_takes_the_plain_store(
    kind: str,
    stores: list[SqlSeqStore],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.setattr(seqbuffer, "MAX_SLOTS", 4)
    frontier = make_frontier(kind, request, speculation=16)
    job = submit(frontier, order="random", seed=7)
    drive(frontier, job, k=8, expand=shaped)
    assert tree_keys(frontier, job) == reference("random", 7, steps=2, **SHAPE)
    kinds = {type(s) for s in stores}
    assert kinds == {SqlSeqStore, BufferedSeqStore}  # short lists buffered, long ones plain
    frontier.close()
