"""Exact Ridge Rider: GetRidges, UpdateRidge, the ride and its end reasons, Theorem 1."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from ridgerider.core.curvature import dense_hessian, gradient
from ridgerider.core.mis import find_mis
from ridgerider.core.ridge import get_ridges, polish, ride
from ridgerider.core.settings import RRSettings
from ridgerider.core.update_ridge import update_exact
from ridgerider.problems.registry import create

D = torch.float64


def rotated(values: list[float], seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    n = len(values)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=D))
    a = (q * torch.tensor(values, dtype=D)) @ q.T
    return 0.5 * (a + a.T)


def quartic_saddle(seed: int, c: float = 0.1):
    """L(θ) = ½θᵀAθ + c·Σθ⁴ with A rotated, so the quartic term makes eigenvectors turn."""
    a = rotated([-1.0, -0.5, -0.2, 0.3, 0.7, 1.0, 1.5, 2.0], seed)

    def loss(theta: Tensor) -> Tensor:
        return 0.5 * theta @ a @ theta + c * (theta**4).sum()

    return loss, a


def rotating(kappa: float = 1.0):
    """L = −x²/2 + y²/2 + κx²y: along x the Hessian gains an off-diagonal 2κx term."""

    def loss(theta: Tensor) -> Tensor:
        x, y = theta[0], theta[1]
        return -0.5 * x**2 + 0.5 * y**2 + kappa * x**2 * y

    return loss


@pytest.fixture(scope="module")
def toy():
    return create("toy2d", {})


@pytest.fixture(scope="module")
def toy_settings(toy):
    return RRSettings(**toy.default_settings())


# --- GetRidges ------------------------------------------------------------------------------


def test_get_ridges_toy2d_origin(toy, toy_settings):
    theta = torch.zeros(2, dtype=D)
    ridges, values = get_ridges(toy.loss, theta, toy_settings)
    torch.testing.assert_close(values, torch.tensor([-4.0, -1.0], dtype=D))
    assert [r.choice for r in ridges] == [(0, 1), (0, -1), (1, 1), (1, -1)]
    x, y = torch.tensor([1.0, 0.0], dtype=D), torch.tensor([0.0, 1.0], dtype=D)
    for r, want in zip(ridges, [x, -x, y, -y], strict=True):
        torch.testing.assert_close(r.direction, want)
    assert [r.eigenvalue for r in ridges] == [-4.0, -4.0, -1.0, -1.0]


def test_get_ridges_filters_zeros_and_groups_on_lever_game():
    game = create("lever-game", {})
    theta = find_mis(game).theta
    s = RRSettings(**game.default_settings())
    ridges, values = get_ridges(game.loss, theta, s)
    assert len(ridges) == 18  # 9 negative eigenvalues, both signs; the two zeros are filtered
    assert int((values.abs() < 1e-9).sum()) == 2
    assert all(r.eigenvalue < -s.zero_tol for r in ridges)
    for r in ridges:
        h = dense_hessian(game.loss, theta)
        torch.testing.assert_close(h @ r.direction, r.eigenvalue * r.direction, atol=1e-12, rtol=0)
    grouped, _ = get_ridges(game.loss, theta, s.with_(one_per_group=True))
    assert [r.choice[0] for r in grouped] == [0, 0, 1, 1, 2, 2, 3, 3]
    capped, _ = get_ridges(game.loss, theta, s.with_(n_ridges=2))
    assert [r.choice for r in capped] == [(0, 1), (0, -1), (1, 1), (1, -1)]


def test_get_ridges_none_at_a_minimum(toy, toy_settings):
    ridges, values = get_ridges(toy.loss, torch.tensor([0.0, 5.0], dtype=D), toy_settings)
    assert ridges == []
    assert bool((values > 0).all())


def test_random_ascent_ridges_are_unit_and_descend():
    loss, _ = quartic_saddle(0)
    theta = 0.1 * torch.randn(8, generator=torch.Generator().manual_seed(1), dtype=D)
    s = RRSettings(ridge_rule="random_ascent", n_ridges=5)
    ridges, _ = get_ridges(loss, theta, s, torch.Generator().manual_seed(2))
    g = gradient(loss, theta)
    assert len(ridges) == 5
    for r in ridges:
        assert float(r.direction.norm()) == pytest.approx(1.0)
        assert float(r.direction @ g) >= 0
    again, _ = get_ridges(loss, theta, s, torch.Generator().manual_seed(2))
    assert all(torch.equal(a.direction, b.direction) for a, b in zip(ridges, again, strict=True))


def _hess(loss):
    """The Hessian function update_exact takes, from a loss."""
    return lambda t: dense_hessian(loss, t)


# --- UpdateRidge ----------------------------------------------------------------------------


def test_update_exact_sign_alignment_and_best_overlap():
    loss, _ = quartic_saddle(3)
    theta = 0.3 * torch.randn(8, generator=torch.Generator().manual_seed(4), dtype=D)
    s = RRSettings(cluster_tol=0.0)
    vals, vecs = torch.linalg.eigh(dense_hessian(loss, theta))
    g = torch.Generator().manual_seed(5)
    for i in range(8):
        # A slightly perturbed eigenvector, in both signs.
        e_prev = vecs[:, i] + 0.05 * torch.randn(8, generator=g, dtype=D)
        e_prev = e_prev / e_prev.norm()
        e_pos, lam_pos, ov_pos, rank = update_exact(_hess(loss), theta, e_prev, s)
        e_neg, lam_neg, ov_neg, rank_neg = update_exact(_hess(loss), theta, -e_prev, s)
        assert rank == rank_neg == i
        assert lam_neg == lam_pos
        assert ov_neg == pytest.approx(ov_pos)
        assert float(e_pos @ e_prev) > 0
        assert float(e_neg @ -e_prev) > 0
        torch.testing.assert_close(e_neg, -e_pos)
        assert lam_pos == pytest.approx(float(vals[i]))
        assert ov_pos == pytest.approx(abs(float(vecs[:, i] @ e_prev)))


def test_update_exact_follows_a_degenerate_pair_by_projection():
    a = rotated([-1.0, -1.0, 0.5, 2.0], 6)
    _, vecs = torch.linalg.eigh(a)
    e_prev = (vecs[:, 0] + 2 * vecs[:, 1]) / 5**0.5  # inside the λ = −1 eigenspace

    def loss(t):
        return 0.5 * t @ a @ t

    theta = torch.zeros(4, dtype=D)
    e, lam, overlap, _ = update_exact(_hess(loss), theta, e_prev, RRSettings())
    torch.testing.assert_close(e, e_prev, rtol=0, atol=1e-10)
    assert lam == pytest.approx(-1.0)
    assert overlap == pytest.approx(1.0)


def test_update_exact_cluster_tol_controls_near_degenerate_projection():
    a = rotated([-1.0, -1.0 + 1e-4, 0.5, 2.0], 7)
    _, vecs = torch.linalg.eigh(a)
    e_prev = (vecs[:, 0] + vecs[:, 1]) / 2**0.5

    def loss(t):
        return 0.5 * t @ a @ t

    theta = torch.zeros(4, dtype=D)
    e, lam, overlap, _ = update_exact(_hess(loss), theta, e_prev, RRSettings(cluster_tol=1e-2))
    assert overlap == pytest.approx(1.0)
    assert lam == pytest.approx(-1.0 + 0.5e-4, abs=1e-10)
    e, lam, overlap, _ = update_exact(_hess(loss), theta, e_prev, RRSettings(cluster_tol=0.0))
    assert overlap == pytest.approx(2**-0.5)
    assert lam in (pytest.approx(-1.0), pytest.approx(-1.0 + 1e-4))
    # Without a cluster, the answer is a single eigenvector, sign-aligned with e_prev.
    assert float(e @ e_prev) > 0
    assert max(abs(float(e @ vecs[:, 0])), abs(float(e @ vecs[:, 1]))) == pytest.approx(1.0)


# --- Theorem 1 ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_theorem_1_loss_decreases_every_two_steps(seed):
    """Near a strict saddle, following the ridge with small α lowers L every two steps."""
    loss, a = quartic_saddle(seed)
    vals, vecs = torch.linalg.eigh(a)
    e = vecs[:, 0]
    noise = 1e-3 * torch.randn(8, generator=torch.Generator().manual_seed(seed), dtype=D)
    theta = -0.01 * e + noise  # off the saddle, so the gradient correlates with e
    assert float(gradient(loss, theta) @ e) > 0
    s = RRSettings(cluster_tol=0.0)
    alpha = 0.01
    losses = [float(loss(theta))]
    lams = []
    for _ in range(120):
        lam = float(e @ dense_hessian(loss, theta) @ e)
        if lam >= 0 or float(gradient(loss, theta) @ e) <= 0:
            break
        theta = theta - alpha * e
        e, lam, overlap, _ = update_exact(_hess(loss), theta, e, s)
        assert overlap > 0.99  # small α: the ridge is re-identified
        lams.append(lam)
        losses.append(float(loss(theta)))
    assert len(losses) > 50, "the ridge should last many steps"
    for t in range(len(losses) - 2):
        assert losses[t + 2] < losses[t], (t, losses[t : t + 3])
    # The ridge stays a ridge until it ends: the eigenvalue rose from λ_min towards 0.
    assert lams[0] == pytest.approx(float(vals[0]), abs=0.05)
    assert lams[-1] > lams[0]


def test_theorem_1_precondition_matters():
    """The opposite sign (gradient anti-correlated with the direction) raises the loss."""
    loss, a = quartic_saddle(0)
    e = torch.linalg.eigh(a)[1][:, 0]
    theta = -0.01 * e
    assert float(gradient(loss, theta) @ -e) < 0
    assert float(loss(theta + 1e-3 * e)) > float(loss(theta))


# --- ride() ---------------------------------------------------------------------------------


def test_ride_toy2d_ends_convex_at_the_four_minima(toy, toy_settings):
    theta = torch.zeros(2, dtype=D)
    ridges, _ = get_ridges(toy.loss, theta, toy_settings)
    labels = []
    for r in ridges:
        out = ride(toy.loss, theta, r.direction, r.eigenvalue, toy_settings)
        assert out.end_reason == "convex"
        assert out.eigenvalue >= -toy_settings.zero_tol
        assert 0 < out.steps < toy_settings.max_ride_steps
        assert len(out.losses) == out.steps + 1
        assert all(b < a for a, b in zip(out.losses, out.losses[1:], strict=False))
        assert float(out.direction @ r.direction) > 0  # sign aligned with the start
        assert float(out.direction.norm()) == pytest.approx(1.0)
        leaf, _, _ = polish(toy.loss, out.theta, toy_settings.polish_steps, toy_settings.polish_lr)
        labels.append(toy.solution_key(leaf))
    # High-curvature ridges reach the local minima, low-curvature ones the global minima.
    assert labels == ["x-", "x+", "y-", "y+"]


def test_ride_overlap_on_rotating_eigenvector():
    loss = rotating()
    theta = torch.zeros(2, dtype=D)
    e = torch.tensor([1.0, 0.0], dtype=D)
    s = RRSettings(alpha=0.1, overlap_threshold=1.0, zero_tol=1e-8)
    out = ride(loss, theta, e, -1.0, s)
    assert out.end_reason == "overlap"
    assert out.steps == 0
    torch.testing.assert_close(out.theta, theta)
    # A lax threshold lets the same ridge be followed (the eigenvector turns but stays close).
    out = ride(loss, theta, e, -1.0, s.with_(overlap_threshold=0.9, max_ride_steps=5))
    assert out.steps == 5
    assert out.end_reason == "max_steps"
    assert float(out.direction @ e) > 0.9
    assert abs(float(out.direction[1])) > 1e-3  # it did rotate


def test_ride_sign_alignment_through_rotation():
    loss = rotating(kappa=0.5)
    for sign in (1.0, -1.0):
        e0 = torch.tensor([sign, 0.0], dtype=D)
        s = RRSettings(alpha=0.05, overlap_threshold=0.95, max_ride_steps=1)
        theta, e = torch.zeros(2, dtype=D), e0
        for _ in range(10):
            out = ride(loss, theta, e, -1.0, s)
            assert out.steps == 1
            assert float(out.direction @ e) > 0.95
            theta, e = out.theta, out.direction
        assert float(e @ e0) > 0
        assert float(theta[0]) * sign < 0  # moved along −α·e


def test_ride_max_steps(toy, toy_settings):
    e = torch.tensor([0.0, 1.0], dtype=D)
    theta = torch.zeros(2, dtype=D)
    out = ride(toy.loss, theta, e, -1.0, toy_settings.with_(max_ride_steps=1))
    assert (out.end_reason, out.steps) == ("max_steps", 1)
    out = ride(toy.loss, theta, e, -1.0, toy_settings, max_steps=3)
    assert (out.end_reason, out.steps) == ("max_steps", 3)
    assert len(out.losses) == 4


def test_ride_no_progress_when_every_step_raises_the_loss():
    def loss(t):
        return -0.5 * t[0] ** 2 + 0.5 * t[1] ** 2 - 3.0 * t[0]

    theta = torch.zeros(2, dtype=D)
    out = ride(loss, theta, torch.tensor([1.0, 0.0], dtype=D), -1.0, RRSettings(alpha=1.0))
    assert (out.end_reason, out.steps) == ("no_progress", 0)
    torch.testing.assert_close(out.theta, theta)
    assert out.losses == [0.0]


def test_ride_no_progress_when_decrease_is_negligible(toy, toy_settings):
    e = torch.tensor([0.0, 1.0], dtype=D)
    out = ride(toy.loss, torch.zeros(2, dtype=D), e, -1.0, toy_settings.with_(min_progress=1.0))
    assert (out.end_reason, out.steps) == ("no_progress", 1)


def test_ride_fixed_update_keeps_the_direction(toy, toy_settings):
    e0 = torch.tensor([0.3, 1.0], dtype=D)
    theta0 = torch.zeros(2, dtype=D)
    s = toy_settings.with_(update="fixed", max_ride_steps=50)
    out = ride(toy.loss, theta0, e0, -1.0, s)
    unit = e0 / e0.norm()
    assert torch.equal(out.direction, unit)
    assert out.eigenvalue == -1.0
    assert out.end_reason != "convex"  # a fixed direction has no eigenvalue to watch
    assert out.steps > 0
    moved = out.theta - theta0
    # Every step is along −e, so the displacement is parallel to e.
    assert abs(float(moved[0] * unit[1] - moved[1] * unit[0])) < 1e-12
    assert float(moved @ unit) < 0


@pytest.mark.parametrize("method", ["exact", "approx"])
def test_on_step_reports_every_accepted_step_and_changes_nothing(toy, toy_settings, method):
    theta = torch.zeros(2, dtype=D)
    settings = toy_settings.with_(method=method)
    (r, *_), _ = get_ridges(toy.loss, theta, settings)
    plain = ride(toy.loss, theta, r.direction, r.eigenvalue, settings)
    seen: list[tuple[int, float]] = []
    watched = ride(
        toy.loss,
        theta,
        r.direction,
        r.eigenvalue,
        settings,
        on_step=lambda k, loss: seen.append((k, loss)),
    )
    assert plain.steps > 5
    assert seen == list(enumerate(plain.losses[1:], start=1))
    assert torch.equal(watched.theta, plain.theta) and watched.losses == plain.losses


def test_ride_does_not_mutate_inputs(toy, toy_settings):
    theta = torch.zeros(2, dtype=D)
    e = torch.tensor([0.0, 2.0], dtype=D)  # not unit: ride normalises
    ride(toy.loss, theta, e, -1.0, toy_settings.with_(max_ride_steps=3))
    assert torch.equal(theta, torch.zeros(2, dtype=D))
    assert torch.equal(e, torch.tensor([0.0, 2.0], dtype=D))


def test_polish_reports_the_steps_it_took():
    def loss(x: Tensor) -> Tensor:
        return 0.5 * (x**2).sum()

    start = torch.tensor([0.6, 0.8], dtype=D)  # ‖x‖ = 1; each step at lr 0.5 halves it
    x, taken, _ = polish(loss, start, steps=100, lr=0.5, tol=1e-10)
    assert taken == 34  # 0.5**33 > 1e-10 >= 0.5**34
    assert float(x.norm()) == pytest.approx(0.5**34)
    x, taken, _ = polish(loss, start, steps=5, lr=0.5)
    assert taken == 5 and float(x.norm()) == pytest.approx(0.5**5)


def test_polish_reports_live_progress_after_the_ride_steps():
    def loss(x: Tensor) -> Tensor:
        return 0.5 * (x**2).sum()

    start = torch.tensor([0.6, 0.8], dtype=D)  # after step i the loss is 0.5·0.25**i
    seen: list[tuple[int, float]] = []
    x, taken, _ = polish(
        loss, start, steps=5, lr=0.5, on_step=lambda k, v: seen.append((k, v)), offset=7
    )
    assert taken == 5
    assert [k for k, _ in seen] == [8, 9, 10, 11, 12]
    assert [v for _, v in seen] == pytest.approx([0.5 * 0.25**i for i in range(1, 6)], rel=1e-12)
    seen.clear()
    _, taken, _ = polish(loss, start, steps=100, lr=0.5, on_step=lambda k, v: seen.append((k, v)))
    assert taken == 34 and [k for k, _ in seen] == list(range(1, 35))  # stopped early
    plain, _, _ = polish(loss, start, steps=5, lr=0.5)
    assert torch.equal(x, plain)


def double_well(theta: Tensor) -> Tensor:
    """x² + (y² − 1)²: a saddle at 0 with the ridge along y (λ = −4), minima at y = ±1."""
    x, y = theta[0], theta[1]
    return x**2 + (y**2 - 1) ** 2


def test_fixed_step_rule_takes_every_step_of_alpha_without_tests():
    theta = torch.zeros(2, dtype=D)
    e = torch.tensor([0.0, 1.0], dtype=D)
    base = RRSettings(alpha=0.3, end_on_convex=False, max_ride_steps=6)
    back = ride(double_well, theta, e, -4.0, base)
    # Backtracking stops once a step no longer lowers the loss, near the minimum y = −1.
    assert back.end_reason == "no_progress" and back.steps < 6
    out = ride(double_well, theta, e, -4.0, base.with_(step_rule="fixed"))
    assert (out.end_reason, out.steps) == ("max_steps", 6)
    # Exactly six steps of 0.3 along −e: past the minimum at y = −1, uphill on the far side.
    torch.testing.assert_close(out.theta, torch.tensor([0.0, -1.8], dtype=D))
    assert out.losses[-1] > min(out.losses)
    assert len(out.losses) == 7


def test_fixed_step_rule_ends_when_the_loss_is_no_longer_finite():
    def barrier(theta: Tensor) -> Tensor:
        return double_well(theta) - torch.log(2.0 - theta[1].abs())

    s = RRSettings(alpha=0.3, end_on_convex=False, max_ride_steps=50, step_rule="fixed")
    out = ride(barrier, torch.zeros(2, dtype=D), torch.tensor([0.0, 1.0], dtype=D), -4.0, s)
    # y = −0.3, …, −1.8 are finite; −2.1 is outside the barrier.
    assert (out.end_reason, out.steps) == ("diverged", 6)
    torch.testing.assert_close(out.theta, torch.tensor([0.0, -1.8], dtype=D))
