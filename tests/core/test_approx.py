"""Approximate GetRidges / UpdateRidge against dense eigendecompositions."""

from __future__ import annotations

import pytest
import torch

from ridgerider.core.approx import (
    approx_get_ridges,
    approx_update_ridge,
    start_track,
    track_from_direction,
)
from ridgerider.core.curvature import dense_hessian
from ridgerider.core.hvp import make_hvp

torch.set_num_threads(1)
F64 = torch.float64


def _mlp(seed: int = 0):
    """Small tanh MLP, cross-entropy; n = 8·6 + 6 + 6·4 + 4 = 82 parameters."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(60, 8, generator=g, dtype=F64)
    y = torch.randint(0, 4, (60,), generator=g)

    def loss(theta: torch.Tensor) -> torch.Tensor:
        w1, b1 = theta[:48].reshape(6, 8), theta[48:54]
        w2, b2 = theta[54:78].reshape(4, 6), theta[78:82]
        return torch.nn.functional.cross_entropy(torch.tanh(x @ w1.T + b1) @ w2.T + b2, y)

    return loss, 0.5 * torch.randn(82, generator=g, dtype=F64)


def _eig(loss, theta):
    return torch.linalg.eigh(dense_hessian(loss, theta))


def test_get_ridges_matches_dense(gen):
    loss, theta = _mlp()
    vals, vecs = _eig(loss, theta)
    assert int((vals < 0).sum()) >= 4  # the point has ridges to find
    spec = approx_get_ridges(loss, theta, 4, tol=1e-9, generator=gen)
    assert spec.converged
    scale = float(vals.abs().max())
    assert float((spec.values - vals[:4]).abs().max()) <= 1e-5 * scale
    cosines = torch.linalg.svdvals(vecs[:, :4].T @ spec.vectors)
    assert float(cosines.min()) >= 1 - 1e-8
    assert spec.guards.shape == (82, 3)


def test_get_ridges_warm_start_is_cheaper(gen):
    loss, theta = _mlp()
    spec = approx_get_ridges(loss, theta, 4, tol=1e-6, generator=gen)
    moved = theta - 1e-4 * spec.vectors[:, 0]
    cold = approx_get_ridges(loss, moved, 4, tol=1e-6, generator=gen)
    warm = approx_get_ridges(
        loss, moved, 4, tol=1e-6, init=torch.cat([spec.vectors, spec.guards], dim=1)
    )
    assert warm.converged and cold.converged
    torch.testing.assert_close(warm.values, cold.values, rtol=1e-6, atol=1e-8)
    assert warm.matvecs < 0.7 * cold.matvecs


@pytest.mark.parametrize("index", [0, 2])
def test_rayleigh_ritz_update_follows_the_dense_eigenvector(gen, index):
    loss, theta = _mlp()
    spec = approx_get_ridges(loss, theta, 5, tol=1e-10, generator=gen)
    track = start_track(spec, index, sign=-1, width=3)
    assert torch.equal(track.direction, -spec.vectors[:, index])
    new_theta = theta - 0.05 * track.direction
    op = make_hvp(loss, new_theta, "cached")
    up = approx_update_ridge(loss, new_theta, track, tol=1e-9, hvp=op, width=3)
    assert up.converged
    assert up.hvps == op.matvecs
    vals, vecs = _eig(loss, new_theta)
    j = int((vecs.T @ track.direction).abs().argmax())
    assert abs(float(vecs[:, j] @ up.direction)) >= 1 - 1e-9
    assert up.eigenvalue == pytest.approx(float(vals[j]), abs=1e-8)
    assert float(up.direction @ track.direction) > 0  # sign follows the previous direction
    assert up.overlap == pytest.approx(abs(float(up.direction @ track.direction)))
    assert up.residual <= 1e-9 * float(vals.abs().max()) * 1.01
    assert up.track.block.shape == (82, 3)


def test_ride_from_a_bare_direction_matches_dense_updates(gen):
    # What ride() does with a branch read back from storage: only e and λ are known.
    loss, theta = _mlp()
    spec = approx_get_ridges(loss, theta, 3, tol=1e-10, generator=gen)
    e, lam = spec.vectors[:, 1], float(spec.values[1])
    track = track_from_direction(e, lam)
    assert track.block.shape == (82, 1)
    for _ in range(5):
        theta = theta - 0.05 * e
        up = approx_update_ridge(loss, theta, track, tol=1e-8, width=4)
        vals, vecs = _eig(loss, theta)
        j = int((vecs.T @ e).abs().argmax())  # the exact rule: largest overlap, sign-aligned
        exact = vecs[:, j] * (1.0 if float(vecs[:, j] @ e) >= 0 else -1.0)
        assert float(up.direction @ exact) >= 1 - 1e-7
        assert up.eigenvalue == pytest.approx(float(vals[j]), abs=1e-7)
        e, track = up.direction, up.track
    assert track.block.shape == (82, 4)


def _crossing_problem(m: int = 12):
    """θ = (t, x): L = ½ xᵀ(H0 + t·D)x. At x = 0 the Hessian is diag(0, H0 + tD), whose two
    lowest eigenvalues −1 + 0.4t and −0.9 − 0.4t cross at t = 0.125 without rotating."""
    g = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(m, m, generator=g, dtype=F64))
    h0 = torch.cat([torch.tensor([-1.0, -0.9, -0.5], dtype=F64), torch.linspace(0.5, 2, m - 3)])
    d = torch.zeros(m, dtype=F64)
    d[0], d[1] = 0.4, -0.4
    a0, dd = (q * h0) @ q.T, (q * d) @ q.T

    def loss(theta: torch.Tensor) -> torch.Tensor:
        t, x = theta[0], theta[1:]
        return 0.5 * x @ ((a0 + t * dd) @ x)

    return loss, q


def test_rayleigh_ritz_tracks_through_a_crossing(gen):
    loss, q = _crossing_problem()
    theta = torch.zeros(13, dtype=F64)
    spec = approx_get_ridges(loss, theta, 3, tol=1e-10, generator=gen)
    track = start_track(spec, 0, width=3)
    followed = torch.cat([torch.zeros(1, dtype=F64), q[:, 0]])
    assert abs(float(track.direction @ followed)) == pytest.approx(1.0)
    crossings = []
    for t in (0.05, 0.1, 0.15, 0.2):
        theta = torch.zeros(13, dtype=F64)
        theta[0] = t
        up = approx_update_ridge(loss, theta, track, tol=1e-10, width=3)
        crossings.append(up.crossing)
        assert abs(float(up.direction @ followed)) >= 1 - 1e-9  # the same vector, not rank 0
        assert up.eigenvalue == pytest.approx(-1.0 + 0.4 * t, abs=1e-9)
        track = up.track
    assert crossings == [False, False, True, False]
    assert track.rank == 1


def test_paper_update_descends_its_loss_and_counts_products(gen):
    loss, theta = _mlp()
    spec = approx_get_ridges(loss, theta, 3, tol=1e-10, generator=gen)
    track = start_track(spec, 0, width=3)
    new_theta = theta - 0.05 * track.direction
    _, vecs = _eig(loss, new_theta)
    j = int((vecs.T @ track.direction).abs().argmax())
    h = dense_hessian(loss, new_theta)
    e0 = track.direction
    res0 = float((h @ e0 - float(e0 @ h @ e0) * e0).norm())

    first = approx_update_ridge(loss, new_theta, track, method="paper", steps=0)
    assert first.hvps == 1
    # The first-order estimate λ' + e'ᵀ(H(θ) − H(θ'))e' is the Rayleigh quotient at θ.
    assert first.eigenvalue == pytest.approx(float(e0 @ h @ e0), rel=1e-10)

    up = approx_update_ridge(loss, new_theta, track, method="paper", steps=40)
    assert up.hvps == 1 + 2 * 40
    assert up.residual < 0.5 * res0
    assert abs(float(vecs[:, j] @ up.direction)) > abs(float(vecs[:, j] @ e0))
    assert float(up.direction @ e0) > 0


def test_paper_update_warm_starts_lambda_from_the_learned_one(gen):
    """The next λ is λ' + e'ᵀ(H(θ) − H(θ'))e' with λ' the learned value, as in the paper."""
    loss, theta = _mlp()
    spec = approx_get_ridges(loss, theta, 3, tol=1e-10, generator=gen)
    track = start_track(spec, 0, width=3)
    theta1 = theta - 0.05 * track.direction
    up1 = approx_update_ridge(
        loss, theta1, track, method="paper", steps=5, lr_e=1e-3, lr_lambda=0.5
    )
    u1 = up1.direction
    h1 = dense_hessian(loss, theta1)
    assert up1.track.rayleigh == pytest.approx(float(u1 @ h1 @ u1), rel=1e-10)
    assert up1.eigenvalue == pytest.approx(up1.track.rayleigh, rel=1e-12)
    # The learned λ moved away from the Rayleigh quotient (so the test below can tell them apart).
    assert abs(up1.track.eigenvalue - up1.track.rayleigh) > 1e-4
    theta2 = theta1 - 0.05 * u1
    h2 = dense_hessian(loss, theta2)
    up2 = approx_update_ridge(loss, theta2, up1.track, method="paper", steps=0)
    expected = up1.track.eigenvalue + float(u1 @ h2 @ u1) - float(u1 @ h1 @ u1)
    assert up2.track.eigenvalue == pytest.approx(expected, rel=1e-10)


def test_unknown_method_and_bad_index_raise(gen):
    loss, theta = _mlp()
    spec = approx_get_ridges(loss, theta, 2, generator=gen)
    with pytest.raises(ValueError, match="index"):
        start_track(spec, 2)
    with pytest.raises(ValueError, match="method"):
        approx_update_ridge(loss, theta, start_track(spec, 0), method="exact")  # type: ignore[arg-type]


def test_fixed_step_ride_is_the_papers_regime_step_for_step(gen):
    """The engine's ride with step_rule="fixed" and the paper's update, against a hand loop."""
    from ridgerider.core.ridge import ride
    from ridgerider.core.settings import RRSettings

    loss, theta = _mlp()
    spec = approx_get_ridges(loss, theta, 2, tol=1e-10, generator=gen)
    e0, lam0 = spec.vectors[:, 0], float(spec.values[0])
    settings = RRSettings(
        method="approx",
        approx_update="paper",
        step_rule="fixed",
        alpha=0.02,
        approx_steps=1,
        approx_lr_e=0.01,
        approx_lr_lambda=0.2,
        end_on_convex=False,
        max_ride_steps=15,
    )
    out = ride(loss, theta, e0, lam0, settings)
    assert (out.end_reason, out.steps) == ("max_steps", 15)

    track = track_from_direction(e0, lam0)
    x = theta.clone()
    for _ in range(15):
        x = x - 0.02 * track.direction
        up = approx_update_ridge(loss, x, track, method="paper", steps=1, lr_e=0.01, lr_lambda=0.2)
        assert up.hvps == 3
        track = up.track
    torch.testing.assert_close(out.theta, x, rtol=0, atol=1e-12)
    torch.testing.assert_close(out.direction, track.direction, rtol=0, atol=1e-12)
    assert out.eigenvalue == pytest.approx(track.rayleigh, rel=1e-12)


@pytest.fixture(scope="module")
def symmetric_saddle():
    """``digits-mlp`` 64-16-10 at its permutation-invariant saddle (1,210 parameters).

    Every Hessian eigenvalue is repeated once per hidden unit: λ₀ = −0.241 sixteen times,
    then −0.208 sixteen times, and so on. The dense Hessian comes from the problem's R-op.
    """
    from ridgerider.problems import create

    problem = create("digits-mlp", {"hidden": "16", "start": "saddle", "image_size": 8})
    theta = problem.analytic_mis()
    op = make_hvp(problem.loss, theta, analytic=problem.exact_hvp)
    h = op(torch.eye(theta.numel(), dtype=theta.dtype))
    return problem, theta, 0.5 * (h + h.T)


@pytest.mark.parametrize("one_per_group", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_approx_get_ridges_equal_exact_at_a_symmetric_saddle(symmetric_saddle, one_per_group, seed):
    from ridgerider.core import RRSettings
    from ridgerider.core.ridge import get_ridges

    problem, theta, h = symmetric_saddle
    vals, vecs = torch.linalg.eigh(h)
    norm = float(vals.abs().max())
    assert int((vals < vals[0] + 1e-9 * norm).sum()) == 16  # the symmetry's multiplicity
    settings = RRSettings(n_ridges=6, one_per_group=one_per_group)
    exact, _ = get_ridges(problem.loss, theta, settings, hessian_fn=lambda _x: h)
    approx, _ = get_ridges(
        problem.loss,
        theta,
        settings.with_(method="approx"),
        torch.Generator().manual_seed(seed),
        hvp_fn=problem.exact_hvp,
    )
    # The same fingerprints: eigen-indices (and signs) as in the whole spectrum.
    assert [r.choice for r in approx] == [r.choice for r in exact]
    expected = [0, 16, 32, 48, 64, 80] if one_per_group else [0, 1, 2, 3, 4, 5]
    assert [r.choice[0] for r in exact[::2]] == expected
    for a, e in zip(approx, exact, strict=True):
        assert abs(a.eigenvalue - e.eigenvalue) <= 1e-4 * norm
        # The ridge lies inside the eigenspace of its eigenvalue.
        space = vecs[:, (vals - e.eigenvalue).abs() <= 1e-6 * norm]
        assert float((space.T @ a.direction).norm()) == pytest.approx(1.0, abs=1e-6)


def test_group_indices_are_fixed_once_every_lower_copy_is_in():
    from ridgerider.core.eigen_groups import group_starts, groups_fixed

    values = torch.tensor([-3.0, -3.0, -2.0, -2.0, -1.0], dtype=F64)
    assert group_starts(values, torch.arange(5), 1e-6, 3.0) == [0, 2, 4]

    def fixed(v: list[float], count: int) -> bool:
        return groups_fixed(torch.tensor(v, dtype=F64), count, 1e-6, 3.0, 1e-6, 1e-4)

    assert fixed([-3.0, -3.0, -2.0, -2.0, -1.0], 3)  # groups −3 and −2 lie below −1
    assert not fixed([-3.0, -3.0, -2.0, -2.0, -1.0], 4)  # a fourth group may follow
    assert fixed([-3.0, -3.0, -2.0, -2.0, 0.5], 4)  # ... but no negative eigenvalue is left
    assert fixed([-3.0, -3.0, -2.0], 2)  # the −2 group's start is fixed, if not its size
    assert not fixed([-3.0, -3.0, -3.0], 2)  # no second group in view yet
