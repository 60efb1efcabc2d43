"""Approximate Ridge Rider (Hessian-vector products only) against exact RR on small problems."""

import pytest

from ridgerider.core import RRSettings, run_search
from ridgerider.problems import create


def _first_level(problem, method, **extra):
    n = problem.default_settings().get("n_ridges", 6)
    settings = RRSettings(
        **{**problem.default_settings(), "method": method, "max_nodes": 1 + 2 * n, **extra}
    )
    result = run_search(problem, settings, seed=0)
    return [(n.key, n.eigenvalue) for n in result.nodes if n.depth <= 1], result


@pytest.mark.parametrize(
    ("name", "params"),
    [("lever-game", {}), ("tree-rl", {"depth": 4, "tree_seed": 2}), ("toy2d", {})],
)
def test_approx_and_exact_find_the_same_first_level_ridges(name, params):
    problem = create(name, params)
    exact, _ = _first_level(problem, "exact")
    approx, _ = _first_level(problem, "approx")
    assert [k for k, _ in approx] == [k for k, _ in exact]
    for (_, a), (_, e) in zip(approx, exact, strict=True):
        if e is None:
            assert a is None
        else:
            assert a == pytest.approx(e, rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("update", ["rayleigh_ritz", "paper"])
def test_approx_rides_reach_the_same_minima_as_exact_on_toy2d(update):
    problem = create("toy2d")
    settings = RRSettings(
        **{**problem.default_settings(), "method": "approx", "approx_update": update}
    )
    result = run_search(problem, settings, seed=0)
    assert {n.solution_key for n in result.solutions} == {"x+", "x-", "y+", "y-"}


def test_approx_lever_game_finds_the_unique_lever():
    problem = create("lever-game")
    settings = RRSettings(**{**problem.default_settings(), "method": "approx", "max_nodes": 40})
    result = run_search(problem, settings, seed=0)
    first = {n.key: n for n in result.nodes if n.depth == 1}
    assert first["0-"].is_solution and first["0-"].metrics["levers"] == [9, 9]


def test_papers_regime_trains_digits_where_a_fixed_eigenvector_cannot():
    """Fig. 4 in miniature: updating the ridge trains the network, following it fixed does not.

    The paper's MNIST regime (fixed small steps, one gradient step on (e, λ) per step) on a
    32-32 digits network, against the Fixed-EV ablation with the same steps.
    """
    import torch

    from ridgerider.core.ridge import get_ridges, ride

    torch.set_num_threads(1)
    problem = create("digits-mlp", {"hidden": "32,32"})
    theta = problem.analytic_mis()
    settings = RRSettings(
        method="approx",
        approx_update="paper",
        step_rule="fixed",
        alpha=0.04,
        approx_steps=1,
        approx_lr_e=0.1,
        approx_lr_lambda=0.3,
        end_on_convex=False,
        max_ride_steps=400,
        n_ridges=1,
        signs="descent",
    )
    (ridge,), _ = get_ridges(problem.loss, theta, settings, torch.Generator().manual_seed(0))
    start = problem.metrics(theta)
    paper = ride(problem.loss, theta, ridge.direction, ridge.eigenvalue, settings)
    fixed = ride(
        problem.loss, theta, ridge.direction, ridge.eigenvalue, settings.with_(update="fixed")
    )
    assert (paper.steps, fixed.steps) == (400, 400)
    after = problem.metrics(paper.theta)
    assert start["test_accuracy"] < 0.25 and after["test_accuracy"] > 0.5
    # The best point anywhere on the fixed eigenvector's line is worse than the updated ride's end.
    assert min(fixed.losses) > paper.losses[-1] + 0.3
