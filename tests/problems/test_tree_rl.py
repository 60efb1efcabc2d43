import itertools

import pytest
import torch

from ridgerider.problems import ParamError, create
from ridgerider.problems.tree_rl import NEGATIVE_REWARD, POSITIVE_REWARD, generate_tree


def _walk_value(tree, probs_left, kind="d", idx=0):
    """Expected reward by recursion over the tree (independent of the incidence matrix)."""
    if kind == "t":
        return tree.rewards[idx]
    (lk, li), (rk, ri) = tree.children[idx]
    p = probs_left[idx]
    return p * _walk_value(tree, probs_left, lk, li) + (1 - p) * _walk_value(
        tree, probs_left, rk, ri
    )


@pytest.mark.parametrize(("depth", "seed"), [(1, 0), (4, 3), (6, 1), (10, 2)])
@pytest.mark.parametrize("deep", [False, True])
def test_generated_tree_shape(depth, seed, deep):
    tree = generate_tree(depth, seed, 0.5, 0.6, deep)
    assert max(len(p) for p in tree.paths) == depth
    assert POSITIVE_REWARD in tree.rewards
    assert set(tree.rewards) <= {POSITIVE_REWARD, NEGATIVE_REWARD}
    assert len(tree.rewards) == len(tree.children) + 1  # a binary tree
    if deep:
        assert all(
            r == NEGATIVE_REWARD
            for r, p in zip(tree.rewards, tree.paths, strict=True)
            if len(p) < depth
        )
    assert generate_tree(depth, seed, 0.5, 0.6, deep) == tree


def test_loss_is_minus_the_expected_reward():
    problem = create("tree-rl", {"depth": 6, "tree_seed": 4})
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        theta = torch.randn(problem.n_params, generator=gen, dtype=torch.float64)
        probs_left = torch.softmax(theta.reshape(-1, 2), dim=1)[:, 0].tolist()
        expected = _walk_value(problem.tree, probs_left)
        assert float(problem.loss(theta)) == pytest.approx(-expected, rel=1e-12)


def test_greedy_leaf_and_metrics():
    problem = create("tree-rl", {"depth": 4, "tree_seed": 0})
    for leaf, path in enumerate(problem.tree.paths):
        theta = torch.zeros(problem.n_params, dtype=torch.float64)
        for node, action in path:
            theta[2 * node + action] = 30.0
        metrics = problem.metrics(theta)
        assert metrics["leaf"] == leaf
        assert metrics["reward"] == problem.tree.rewards[leaf]
        assert metrics["expected_reward"] == pytest.approx(problem.tree.rewards[leaf], abs=1e-6)
        assert problem.solution_key(theta) == str(leaf)
    assert problem.targets() == [
        str(i) for i, r in enumerate(problem.tree.rewards) if r == POSITIVE_REWARD
    ]


def test_brute_force_optimum_is_ten():
    problem = create("tree-rl", {"depth": 4, "tree_seed": 5})
    assert problem.n_decisions <= 12
    best = -1e9
    for actions in itertools.product((0, 1), repeat=problem.n_decisions):
        theta = torch.zeros(problem.n_params, dtype=torch.float64)
        for node, action in enumerate(actions):
            theta[2 * node + action] = 30.0
        best = max(best, -float(problem.loss(theta)))
    assert best == pytest.approx(POSITIVE_REWARD, abs=1e-6)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"depth": 0}, "depth"),
        ({"depth": 17}, "depth"),
        ({"tree_seed": -1}, "tree_seed"),
        ({"positive_prob": 0}, "positive_prob"),
        ({"branch_prob": 1.5}, "branch_prob"),
        ({"width": 3}, "width"),
    ],
)
def test_bad_parameters(params, field):
    with pytest.raises(ParamError) as info:
        create("tree-rl", params)
    assert info.value.field == field


def test_paper_generator_puts_goals_at_several_depths():
    """``generator="paper"``: terminals at several depths, +10 ones above the full depth too."""
    shallow_goals = 0
    for seed in range(10):
        paper = create("tree-rl", {"depth": 8, "tree_seed": seed, "generator": "paper"}).tree
        default = create("tree-rl", {"depth": 8, "tree_seed": seed}).tree
        assert paper.children == default.children and paper.paths == default.paths  # one shape
        assert set(paper.rewards) == {POSITIVE_REWARD, NEGATIVE_REWARD}
        assert len({len(p) for p in paper.paths}) >= 3
        assert max(len(p) for p in paper.paths) == 8
        shallow_goals += sum(
            r == POSITIVE_REWARD and len(p) < 8
            for r, p in zip(paper.rewards, paper.paths, strict=True)
        )
        # The default generator keeps every goal at the full depth.
        assert all(
            len(p) == 8 for r, p in zip(default.rewards, default.paths, strict=True) if r > 0
        )
    assert shallow_goals >= 10


def test_paper_generator_always_has_a_negative_terminal():
    """Even when every terminal is drawn positive, two +10 siblings are never kept."""
    for depth, seed in [(1, 0), (3, 5), (6, 2)]:
        tree = generate_tree(depth, seed, 1.0, 0.5, generator="paper")
        assert NEGATIVE_REWARD in tree.rewards and POSITIVE_REWARD in tree.rewards
    with pytest.raises(ParamError, match="generator"):
        create("tree-rl", {"generator": "uniform"})
