"""The in-process search loop: the toy2d tree, determinism by seed, budgets, settings."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ridgerider.core.branch import Branch
from ridgerider.core.expand import expand
from ridgerider.core.search import coverage, root_branch, run_search
from ridgerider.core.settings import ORDERS, MISSettings, RRSettings
from ridgerider.problems.registry import create


def settings_for(problem, **changes) -> RRSettings:
    return RRSettings(**{**problem.default_settings(), **changes})


@pytest.fixture(scope="module")
def toy():
    return create("toy2d", {})


@pytest.fixture(scope="module")
def toy_result(toy):
    return run_search(toy, settings_for(toy, order="bfs"), seed=0)


def test_toy2d_bfs_tree(toy, toy_result):
    r = toy_result
    assert [n.key for n in r.nodes] == ["", "0+", "0-", "1+", "1-"]
    assert r.stopped_by == "exhausted"
    assert r.pending == 0
    root = r.nodes[0]
    assert (root.end_reason, root.steps, root.n_children, root.is_leaf) == ("root", 0, 4, False)
    assert root.spectrum == pytest.approx([-4.0, -1.0])
    for n in r.nodes[1:]:
        assert n.end_reason == "convex"
        assert n.is_leaf and n.is_solution and n.leaf_reason == "no_ridges"
        assert n.n_children == 0
    # Fig. 1: the high-curvature ridges reach the local minima, the low-curvature the global.
    assert [n.solution_key for n in r.nodes[1:]] == ["x-", "x+", "y-", "y+"]
    assert [round(n.loss, 6) for n in r.nodes[1:]] == [-1.0, -1.0, -6.25, -6.25]
    assert r.steps == sum(n.steps for n in r.nodes)
    assert coverage(toy, r.nodes) == {"found": 4, "total": 4}
    assert {n.solution_key for n in r.solutions} == {"x+", "x-", "y+", "y-"}


def test_toy2d_dfs_order(toy, toy_result):
    # No grandchildren, so DFS visits the same nodes in the same (first child first) order.
    r = run_search(toy, settings_for(toy, order="dfs", polish_steps=0), seed=0, mis=toy_result.mis)
    assert [n.key for n in r.nodes] == ["", "0+", "0-", "1+", "1-"]


def _tree_signature(result):
    return [
        (n.key, n.loss, n.steps, n.end_reason, n.theta.numpy().tobytes(), tuple(n.losses))
        for n in result.nodes
    ]


def test_tree_rl_same_seed_same_tree():
    tree = create("tree-rl", {"depth": 6, "tree_seed": 2})
    s = settings_for(tree, max_nodes=12)
    a = run_search(tree, s, seed=5)
    b = run_search(tree, s, seed=5)
    assert len(a.nodes) == 12
    assert a.stopped_by == "max_nodes"
    assert _tree_signature(a) == _tree_signature(b)
    assert a.pending == b.pending


def test_lever_game_same_seed_same_tree_other_seed_differs():
    game = create("lever-game", {})
    s = settings_for(game, max_nodes=6)
    mis = MISSettings(perturbation=1e-3)
    a = run_search(game, s, seed=1, mis_settings=mis)
    b = run_search(game, s, seed=1, mis_settings=mis)
    c = run_search(game, s, seed=2, mis_settings=mis)
    assert _tree_signature(a) == _tree_signature(b)
    assert torch.equal(a.mis.theta, b.mis.theta)
    assert not torch.equal(a.mis.theta, c.mis.theta)
    assert [n.key for n in a.nodes] == ["", "0+", "0-", "1+", "1-", "2+"]


@pytest.mark.parametrize("order", ORDERS)
def test_every_order_expands_every_node_once(order):
    tree = create("tree-rl", {"depth": 5, "tree_seed": 2})
    r = run_search(tree, settings_for(tree, order=order), seed=0)
    assert r.stopped_by == "exhausted"
    keys = [n.key for n in r.nodes]
    assert keys[0] == ""
    assert len(set(keys)) == len(keys) == 12  # measured; the same set for every order
    # Every node's parent was expanded before it.
    for i, n in enumerate(r.nodes[1:], 1):
        parent = ".".join(n.key.split(".")[:-1])
        assert parent in keys[:i]


def test_max_nodes_budget(toy, toy_result):
    r = run_search(toy, settings_for(toy, max_nodes=3, polish_steps=0), mis=toy_result.mis)
    assert r.stopped_by == "max_nodes"
    assert [n.key for n in r.nodes] == ["", "0+", "0-"]
    assert r.pending == 2
    r = run_search(toy, settings_for(toy, max_nodes=1), mis=toy_result.mis)
    assert (r.stopped_by, len(r.nodes), r.pending) == ("max_nodes", 1, 4)


def test_max_steps_budget(toy, toy_result):
    # The root costs no steps; the first ride overshoots the budget and is finished anyway.
    r = run_search(toy, settings_for(toy, max_steps=1, polish_steps=0), mis=toy_result.mis)
    assert r.stopped_by == "max_steps"
    assert [n.key for n in r.nodes] == ["", "0+"]
    assert r.steps == r.nodes[1].steps > 1
    assert r.pending == 3
    # A zero step budget still expands the root (so the search always reports its branches).
    r = run_search(toy, settings_for(toy, max_steps=0), mis=toy_result.mis)
    assert (r.stopped_by, len(r.nodes), r.pending) == ("max_steps", 1, 4)


def test_on_node_callback_sees_every_node(toy, toy_result):
    seen = []
    r = run_search(
        toy,
        settings_for(toy, polish_steps=0, max_nodes=4),
        mis=toy_result.mis,
        on_node=lambda node, steps: seen.append((node.key, steps)),
    )
    assert [k for k, _ in seen] == [n.key for n in r.nodes]
    assert seen[-1][1] == r.steps


def test_max_depth_makes_leaves(toy, toy_result):
    r = run_search(toy, settings_for(toy, max_depth=0, polish_steps=0), mis=toy_result.mis)
    assert len(r.nodes) == 1
    assert r.nodes[0].leaf_reason == "max_depth"
    assert r.nodes[0].is_solution


def test_no_depth_limit_branches_at_any_depth():
    """``max_depth=None`` is no limit (a branch 5000 choices deep still branches); ``0`` is not."""
    tree = create("tree-rl", {"depth": 4, "tree_seed": 1})
    free_s = settings_for(tree).with_(max_depth=None, polish_steps=0)
    root = root_branch(run_search(tree, free_s.with_(max_nodes=1), seed=0).mis, seed=0)
    # A child that branches again, moved 5000 choices deep (tree-rl's loss does not depend on
    # the fingerprint, so its ride and ridges stay the same).
    child = next(c for c in expand(tree, free_s, root).children if expand(tree, free_s, c).children)
    deep = dataclasses.replace(child, fingerprint=((0, 1),) * 4999 + child.fingerprint[-1:])
    free = expand(tree, free_s, deep)
    assert free.node.leaf_reason is None and free.children
    capped = expand(tree, free_s.with_(max_depth=1024), deep)
    assert capped.node.leaf_reason == "max_depth" and capped.children == []
    assert RRSettings.from_dict(RRSettings(max_depth=None).to_dict()).max_depth is None


def test_expand_is_pure(toy, toy_result):
    s = settings_for(toy, polish_steps=0)
    root = root_branch(toy_result.mis, seed=9)
    a, b = expand(toy, s, root), expand(toy, s, root)
    assert [c.to_bytes() for c in a.children] == [c.to_bytes() for c in b.children]
    child = a.children[2]
    x, y = expand(toy, s, child), expand(toy, s, child)
    assert torch.equal(x.node.theta, y.node.theta)
    assert x.node.losses == y.node.losses
    assert child.seed != a.children[3].seed


def test_expand_reports_a_leafs_polish_as_live_progress():
    tree = create("tree-rl", {"depth": 4, "tree_seed": 1})
    s = settings_for(tree).with_(max_depth=1)  # every ridden child is a leaf
    root = expand(tree, s, root_branch(run_search(tree, s.with_(max_nodes=1)).mis, seed=0))
    leaf = None
    for child in root.children:  # the first that rides is a solution leaf, and is polished
        out = expand(tree, s, child)
        if out.node.is_solution:
            leaf = (child, out)
            break
    assert leaf is not None and s.polish_steps > 0
    child, plain = leaf
    seen: list[int] = []
    watched = expand(tree, s, child, on_step=lambda k, _loss: seen.append(k))
    assert seen == list(range(1, plain.node.steps + 1))  # the ride's steps, then the polish's
    assert plain.node.steps == len(plain.node.losses) - 1 + s.polish_steps
    assert torch.equal(watched.node.theta, plain.node.theta)


def test_stalled_branch_is_not_a_solution(toy):
    # At a minimum every step raises the loss: the ride makes no step and the branch stalls.
    theta = torch.tensor(toy.minima()["y+"], dtype=torch.float64)
    up = Branch(theta, torch.tensor([0.0, 1.0], dtype=torch.float64), -1.0, ((1, 1),), 0, None)
    exp = expand(toy, settings_for(toy), up)
    assert exp.node.steps == 0
    assert exp.node.end_reason == "no_progress"
    assert exp.node.leaf_reason == "stalled"
    assert not exp.node.is_solution
    assert exp.children == []


# --- RRSettings validation --------------------------------------------------------------------

INVALID = [
    ("method", "approximate"),
    ("order", "lifo"),
    ("update", "power"),
    ("ridge_rule", "gradient"),
    ("n_ridges", 0),
    ("n_ridges", 4097),
    ("alpha", 0.0),
    ("alpha", -1.0),
    ("alpha_min", 0.0),
    ("alpha_min", 2.0),  # above alpha = 1.0
    ("overlap_threshold", 0.0),
    ("overlap_threshold", 1.01),
    ("max_ride_steps", 0),
    ("zero_tol", -1e-9),
    ("repeat_tol", -1.0),
    ("cluster_tol", -0.1),
    ("cluster_tol", 1.0),
    ("min_progress", -1e-12),
    ("polish_steps", -1),
    ("polish_lr", 0.0),
    ("max_depth", -1),
    ("max_nodes", 0),
    ("max_steps", -1),
    ("approx_steps", -1),
    ("approx_lr_e", -0.1),
    ("approx_lr_lambda", -0.1),
    ("step_rule", "adaptive"),
]


@pytest.mark.parametrize(("field", "value"), INVALID, ids=[f"{f}={v}" for f, v in INVALID])
def test_invalid_setting_raises_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"^{field} must be"):
        RRSettings(**{field: value})
    with pytest.raises(ValueError, match=rf"^{field} must be"):
        RRSettings().with_(**{field: value})


def test_boundary_values_are_valid():
    RRSettings(n_ridges=1, alpha_min=1.0, overlap_threshold=1.0, max_ride_steps=1)
    RRSettings(n_ridges=4096, zero_tol=0.0, repeat_tol=0.0, cluster_tol=0.0, min_progress=0.0)
    RRSettings(polish_steps=0, max_depth=0, max_nodes=1, max_steps=0)
    for order in ORDERS:
        assert RRSettings(order=order).order == order


def test_settings_dict_round_trip_and_unknown_key():
    s = RRSettings(order="dfs", n_ridges=3, alpha=0.5)
    assert RRSettings.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="'bogus'"):
        RRSettings.from_dict({**s.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="n_ridges"):
        RRSettings.from_dict({**s.to_dict(), "n_ridges": -3})
    assert s.with_(alpha=0.25).alpha == 0.25
    assert s.alpha == 0.5  # frozen; with_ copies


def test_tree_rl_defaults_polish_leaves_and_count_the_polish():
    tree = create("tree-rl", {"depth": 6, "tree_seed": 2})
    s = settings_for(tree)
    r = run_search(tree, s, seed=0)
    assert r.stopped_by == "exhausted"
    solutions = r.solutions
    assert solutions and all(n.depth <= s.max_depth for n in r.nodes)
    for n in r.nodes:
        rode = len(n.losses) - 1
        # A softmax policy's gradient never falls to 1e-10 in 50 steps: the polish runs in full.
        assert n.steps == rode + (s.polish_steps if n.is_solution else 0)
    assert r.steps == sum(n.steps for n in r.nodes)
    assert coverage(tree, r.nodes) == {"found": 3, "total": 3}  # measured: every goal
