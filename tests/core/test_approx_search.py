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
    [("lever-game", {}), ("tree-rl", {"depth": 5, "tree_seed": 2}), ("toy2d", {})],
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
