import pytest
import torch

from ridgerider.core import find_mis, gradient
from ridgerider.problems import ParamError, available, create


def test_registered_as_a_builtin():
    assert "coord-game" in available()


def test_classes_are_laid_out_by_the_seed():
    a = create("coord-game", {"classes": "1.0x3,0.6x1", "seed": 0})
    b = create("coord-game", {"classes": "1.0×3, 0.6×1", "seed": 0})
    assert a.payoff_values() == b.payoff_values()
    assert sorted(a.payoff_values()) == [0.6, 1.0, 1.0, 1.0]
    layouts = {
        create("coord-game", {"classes": "1x7,0.8x2,0.6x1", "seed": s}).payoff_values()
        for s in range(6)
    }
    assert len(layouts) > 1
    assert all(sorted(x) == sorted((1.0,) * 7 + (0.8,) * 2 + (0.6,)) for x in layouts)


def test_random_classes_when_none_are_given():
    for seed in range(10):
        game = create("coord-game", {"seed": seed, "actions": 9})
        sizes = game.class_sizes()
        assert 2 <= len(sizes) <= 4 and sum(sizes.values()) == 9
        assert all(0.5 <= r <= 1.0 for r in sizes)
    assert create("coord-game").m == 10


def test_best_zero_shot_is_the_highest_payoff_per_class_member():
    game = create("coord-game", {"classes": "1x3,0.5x1,0.9x2"})
    assert game.best_zero_shot() == (0.5, 0.5, 1)
    game = create("coord-game", {"classes": "1x2,0.4x1"})
    assert game.best_zero_shot() == (0.5, 1.0, 2)


def test_is_a_lever_game_with_its_payoffs():
    game = create("coord-game", {"classes": "1x3,0.7x2,0.6x1", "seed": 3})
    mis = find_mis(game)
    assert float(gradient(game.loss, mis.theta).norm()) < 1e-12
    theta = torch.zeros(12, dtype=torch.float64)
    lever = game.payoff_values().index(0.7)
    theta[lever], theta[6 + lever] = 30.0, 30.0
    assert float(game.joint_return(theta, theta)) == pytest.approx(0.7, abs=1e-9)
    assert game.metrics(theta)["payoff"] == 0.7
    sigma = game.sample_symmetry(torch.Generator().manual_seed(0))
    assert torch.equal(game.payoffs[sigma[:6]], game.payoffs)


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"classes": "1x3,0.5x"}, "classes", "payoff x count"),
        ({"classes": "1x3,1x2"}, "classes", "must differ"),
        ({"classes": "1x3", "actions": 4}, "classes", "sum to 3, but actions is 4"),
        ({"classes": "1x1"}, "classes", "between 2 and 256"),
        ({"classes": "1x2,0x1"}, "classes", "(0, 1000]"),
        ({"classes": "1x2,0.5x0"}, "classes", ">= 1"),
        ({"actions": 1}, "actions", "greater than or equal to 2"),
        ({"seed": -1}, "seed", "greater than or equal to 0"),
        ({"bogus": 1}, "bogus", "unknown parameter"),
    ],
)
def test_bad_params_name_the_field(params, field, message):
    with pytest.raises(ParamError) as info:
        create("coord-game", params)
    assert info.value.field == field
    assert message in str(info.value)
