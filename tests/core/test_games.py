"""Cross-play math and replicate mechanics against plain references."""

import pytest
import torch

from ridgerider.core import RRSettings, gradient
from ridgerider.core.crossplay import (
    ReplicateSettings,
    choose,
    finish,
    mis_ridges,
    replicate_seed,
    run_replicate,
    score_fingerprints,
)
from ridgerider.core.games import (
    cross_play_matrix,
    is_two_player,
    pair_stats,
    symmetric_cross_play,
)
from ridgerider.problems import create


@pytest.fixture(scope="module")
def game():
    return create("lever-game")


def test_only_games_are_two_player(game):
    assert is_two_player(game) and is_two_player(create("coord-game"))
    assert not is_two_player(create("toy2d"))


def test_cross_play_matrix_matches_a_loop(game, gen):
    a = [torch.randn(20, generator=gen, dtype=torch.float64) for _ in range(4)]
    b = [torch.randn(20, generator=gen, dtype=torch.float64) for _ in range(3)]
    m = cross_play_matrix(game, a, b)
    ref = torch.tensor(
        [[float(game.joint_return(x, y)) for y in b] for x in a], dtype=torch.float64
    )
    assert m.shape == (4, 3)
    assert torch.allclose(m, ref, atol=1e-14)


def test_cross_play_uses_player_one_of_a_and_player_two_of_b(game):
    a = torch.zeros(20, dtype=torch.float64)
    a[9], a[10 + 0] = 30.0, 30.0  # player 1 plays lever 9, player 2 plays lever 0
    b = torch.zeros(20, dtype=torch.float64)
    b[0], b[10 + 9] = 30.0, 30.0  # player 1 plays lever 0, player 2 plays lever 9
    m = cross_play_matrix(game, [a, b], [a, b])
    assert m[0, 1] == pytest.approx(0.6, abs=1e-9)  # 9 meets 9
    assert m[1, 0] == pytest.approx(1.0, abs=1e-9)  # 0 meets 0
    assert m[0, 0] == pytest.approx(0.0, abs=1e-9)


def test_pair_stats_splits_diagonal_and_off_diagonal():
    m = torch.tensor([[1.0, 0.0, 0.5], [0.0, 0.8, 1.0], [0.5, 1.0, 0.6]], dtype=torch.float64)
    s = pair_stats(m)
    off = torch.tensor([0.0, 0.5, 0.0, 1.0, 0.5, 1.0], dtype=torch.float64)
    assert s.xp == pytest.approx(float(off.mean()))
    assert s.xp_std == pytest.approx(float(off.std(correction=0)))
    assert s.sp == pytest.approx(0.8)
    assert s.sp_std == pytest.approx(float(torch.tensor([1.0, 0.8, 0.6]).std(correction=0)))


def test_symmetries_permute_within_payoff_classes_and_keep_self_play(game, gen):
    theta = torch.randn(20, generator=gen, dtype=torch.float64)
    seen = set()
    for _ in range(30):
        sigma = game.sample_symmetry(gen)
        assert sorted(sigma.tolist()) == list(range(20))
        assert torch.equal(sigma[10:], sigma[:10] + 10)  # the same relabelling for both players
        assert torch.equal(game.payoffs[sigma[:10]], game.payoffs)  # stays within a class
        moved = theta[sigma]
        assert float(game.joint_return(moved, moved)) == pytest.approx(
            float(game.joint_return(theta, theta)), abs=1e-12
        )
        seen.add(tuple(sigma[:10].tolist()))
    assert len(seen) > 10  # random, not a fixed permutation
    assert all(s[9] == 9 for s in seen)  # the unique 0.6 lever is never relabelled


def test_symmetric_cross_play_breaks_arbitrary_coordination(game, gen):
    one = torch.zeros(20, dtype=torch.float64)
    one[0], one[10] = 30.0, 30.0  # both players on a 1.0 lever
    six = torch.zeros(20, dtype=torch.float64)
    six[9], six[19] = 30.0, 30.0  # both on the unique 0.6 lever
    xp_one = symmetric_cross_play(game, [one, one.clone()], gen, draws=200)
    xp_six = symmetric_cross_play(game, [six, six.clone()], gen, draws=20)
    assert xp_one == pytest.approx(1 / 7, abs=0.06)  # a random relabelling of seven levers
    assert xp_six == pytest.approx(0.6, abs=1e-9)
    assert symmetric_cross_play(game, [one], gen) is None  # one run: no pair


def test_finish_matches_gradient_descent_row_by_row(game, gen):
    starts = torch.randn(5, 20, generator=gen, dtype=torch.float64)
    out = finish(game, starts, 25, 0.5)
    for row, start in zip(out, starts, strict=True):
        x = start.clone()
        for _ in range(25):
            x = x - 0.5 * gradient(game.loss, x)
        assert torch.allclose(row, x, atol=1e-12)


def test_mis_ridges_rotate_inside_repeated_eigenvalues(game):
    theta = game.analytic_mis()
    h = game.hessian(theta)
    a, _ = mis_ridges(game, theta, 9, 1e-6, 1e-3, torch.Generator().manual_seed(1))
    b, _ = mis_ridges(game, theta, 9, 1e-6, 1e-3, torch.Generator().manual_seed(2))
    assert [r.choice for r in a] == [(i, s) for i in range(9) for s in (1, -1)]
    for r in a:  # still eigenvectors of their eigenvalues, unit length
        assert torch.allclose(h @ r.direction, r.eigenvalue * r.direction, atol=1e-12)
        assert float(r.direction.norm()) == pytest.approx(1.0)
    dirs = torch.stack([r.direction for r in a if r.choice[1] == 1], 1)
    assert torch.allclose(dirs.T @ dirs, torch.eye(9, dtype=torch.float64), atol=1e-12)
    # Unique eigenvalues keep their vector; the six-fold 1.0-lever group gets a new basis.
    assert torch.allclose(a[0].direction, b[0].direction, atol=1e-12)
    assert not torch.allclose(a[8].direction, b[8].direction, atol=1e-3)


def test_replicates_depend_only_on_their_seed(game):
    rr = RRSettings(**{**game.default_settings(), "end_on_convex": False})
    rep = ReplicateSettings(finish_steps=200)
    s1, s2 = replicate_seed(0, 0), replicate_seed(0, 1)
    assert s1 != s2 and s1 == replicate_seed(0, 0)
    r1 = run_replicate(game, rr, rep, 1, s1)
    again = run_replicate(game, rr, rep, 1, s1)
    other = run_replicate(game, rr, rep, 1, s2)
    for x, y in zip(r1.leaves, again.leaves, strict=True):
        assert torch.equal(x.theta, y.theta)
    assert not torch.equal(r1.leaves[0].theta, other.leaves[0].theta)
    # The most negative ridge, minus sign, is the unique 0.6 lever in both runs.
    assert [game.solution_key(r.by_choice()[(0, -1)].theta) for r in (r1, other)] == ["9/9"] * 2
    scores = score_fingerprints(game, [r1, other])
    assert scores[choose(scores)].key == "0-"
