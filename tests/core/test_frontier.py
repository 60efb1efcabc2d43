"""MemoryFrontier: each search order on a small hand-made tree."""

from __future__ import annotations

import pytest
import torch

from ridgerider.core.branch import Branch
from ridgerider.core.frontier import MemoryFrontier

# A hand-made tree: node -> children in exploration order; losses order the priority frontier.
TREE = {
    "r": ["a", "b", "c"],
    "a": ["a1", "a2"],
    "b": ["b1"],
    "c": ["c1", "c2"],
    "a1": ["a11"],
}
LOSS = {
    "r": 0.0,
    "a": -1.0,
    "b": -3.0,
    "c": -2.0,
    "a1": -5.0,
    "a2": -1.0,
    "b1": -2.0,
    "c1": -2.0,
    "c2": -2.0,
    "a11": None,
}
THETA = torch.zeros(1, dtype=torch.float64)


def branch(name: str) -> Branch:
    # The name is carried in the fingerprint as character codes, so it survives any order.
    return Branch(THETA, None, None, tuple((ord(ch), 1) for ch in name), 0, LOSS[name])


def name_of(b: Branch) -> str:
    return "".join(chr(i) for i, _ in b.fingerprint)


def expansion_order(order: str, seed: int = 0) -> list[str]:
    f = MemoryFrontier(order, seed)
    f.push([branch("r")])
    seen = []
    while len(f):
        name = name_of(f.pop())
        seen.append(name)
        f.push([branch(c) for c in TREE.get(name, [])])
    return seen


ALL = sorted(LOSS)


def test_bfs_is_fifo():
    assert expansion_order("bfs") == ["r", "a", "b", "c", "a1", "a2", "b1", "c1", "c2", "a11"]


def test_dfs_is_lifo_first_child_first():
    assert expansion_order("dfs") == ["r", "a", "a1", "a11", "a2", "b", "b1", "c", "c1", "c2"]


def test_priority_lowest_loss_first_ties_by_insertion():
    # After r: b(-3) < c(-2) < a(-1). b opens b1(-2), which ties with the older c: c goes
    # first; c's children c1, c2 (-2) then queue behind b1 in insertion order.
    assert expansion_order("priority") == [
        "r",
        "b",
        "c",
        "b1",
        "c1",
        "c2",
        "a",
        "a1",
        "a2",
        "a11",  # loss None sorts last
    ]


def test_random_is_reproducible_and_seed_dependent():
    first = expansion_order("random", seed=3)
    assert first == expansion_order("random", seed=3)
    assert sorted(first) == ALL
    assert first[0] == "r"
    assert expansion_order("random", seed=4) != first
    others = {tuple(expansion_order("random", seed=s)) for s in range(4, 12)}
    assert len(others) > 4, "different seeds must give different orders"
    # Not simply FIFO or LIFO in disguise.
    assert others - {tuple(expansion_order("bfs")), tuple(expansion_order("dfs"))}


def test_random_pops_uniformly():
    counts = dict.fromkeys("abcd", 0)
    for seed in range(400):
        f = MemoryFrontier("random", seed)
        f.push([branch(x) for x in ("a", "b", "c", "a1")])
        counts[{"a": "a", "b": "b", "c": "c", "a1": "d"}[name_of(f.pop())]] += 1
    assert all(60 < c < 140 for c in counts.values()), counts


@pytest.mark.parametrize("order", ["bfs", "dfs", "priority", "random"])
def test_len_and_empty_pop(order):
    f = MemoryFrontier(order, 0)
    assert len(f) == 0
    with pytest.raises(IndexError):
        f.pop()
    f.push([branch("a"), branch("b")])
    f.push([])
    assert len(f) == 2
    got = {name_of(f.pop()), name_of(f.pop())}
    assert got == {"a", "b"}
    assert len(f) == 0
    with pytest.raises(IndexError):
        f.pop()


def test_push_accepts_any_iterable():
    f = MemoryFrontier("bfs")
    f.push(branch(x) for x in ("a", "b"))
    assert [name_of(f.pop()), name_of(f.pop())] == ["a", "b"]


def test_unknown_order_raises():
    with pytest.raises(ValueError, match="order"):
        MemoryFrontier("lifo")
