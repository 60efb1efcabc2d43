import pytest
import torch

from ridgerider.core import RRSettings, find_mis, gradient, run_search
from ridgerider.problems import ParamError, create


@pytest.fixture(scope="module")
def game():
    return create("lever-game")


@pytest.fixture(scope="module")
def searched(game):
    """The first command's search to 400 nodes (two tests read it)."""
    settings = RRSettings(**{**game.default_settings(), "max_nodes": 400})
    return run_search(game, settings, seed=0)


def test_mis_is_the_mixed_equilibrium(game):
    mis = find_mis(game)
    p, q = game.policies(mis.theta)
    expected = torch.tensor([0.0896] * 7 + [0.1119] * 2 + [0.1493], dtype=torch.float64)
    assert torch.allclose(p, expected, atol=1e-4)
    assert torch.allclose(q, expected, atol=1e-4)
    assert float(gradient(game.loss, mis.theta).norm()) < 1e-12


def test_joint_return_is_cross_play(game):
    a = torch.zeros(20, dtype=torch.float64)
    a[9] = 20.0  # player 1 of run a plays lever 9
    b = torch.zeros(20, dtype=torch.float64)
    b[10 + 9] = 20.0  # player 2 of run b plays lever 9
    assert float(game.joint_return(a, b)) == pytest.approx(0.6, abs=1e-6)
    c = torch.zeros(20, dtype=torch.float64)
    c[10 + 0] = 20.0
    assert float(game.joint_return(a, c)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.xdist_group("lever-game-400")  # one test process: the search runs once
def test_ridge_rider_finds_every_class_of_lever(game, searched):
    result = searched
    coordinated = {tuple(n.metrics["levers"]) for n in result.solutions}
    payoffs = game.params.payoffs
    classes = {payoffs[a] for a, b in coordinated if a == b}
    assert (9, 9) in coordinated  # the unique 0.6 lever
    assert classes == {0.6, 0.8, 1.0}
    # The 0.6 lever is reached straight from the most negative ridge at the MIS.
    first = {n.key: n for n in result.nodes if n.depth == 1}
    assert first["0-"].is_solution and first["0-"].metrics["levers"] == [9, 9]


@pytest.mark.parametrize(
    ("payoffs", "message"),
    [("1,x", "comma-separated"), ("1", "at least 2"), ("1,-1", "(0, 1000]"), ("", "at least 2")],
)
def test_bad_payoffs(payoffs, message):
    with pytest.raises(ParamError) as info:
        create("lever-game", {"payoffs": payoffs})
    assert info.value.field == "payoffs"
    assert message in str(info.value)


@pytest.mark.xdist_group("lever-game-400")
def test_default_settings_finish_every_leaf_at_its_levers_payoff(game, searched):
    """The first command's leaves: each pays its lever's payoff (1.0, 0.8 or 0.6) to 0.01.

    400 nodes: where the first 1.0 leaf comes depends on the float bits of torch's CPU kernels
    (node 52 with its AVX2 ones, 72 with AVX-512, 262 with the plain ones); 60 nodes found it
    with AVX2 only.
    """
    solutions = [n for n in searched.nodes if n.is_solution]
    assert len(solutions) >= 7
    payoffs = game.payoff_values()
    for node in solutions:
        m = game.metrics(node.theta)
        a, b = m["levers"]
        assert a == b, node.key
        assert m["return"] == pytest.approx(payoffs[a], abs=0.01), node.key
    assert {round(payoffs[game.metrics(n.theta)["levers"][0]], 1) for n in solutions} == {
        1.0,
        0.8,
        0.6,
    }
