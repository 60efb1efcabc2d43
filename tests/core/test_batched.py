"""Batched exact RR against the one-branch path (dense Hessians, eigh, get_ridges, ride)."""

import pytest
import torch

from ridgerider.core import RRSettings, find_mis
from ridgerider.core.batched import (
    batched_get_ridges,
    batched_hessians,
    batched_spectra,
    ride_batched,
)
from ridgerider.core.curvature import dense_hessian, symmetric_eigh
from ridgerider.core.ridge import get_ridges, ride
from ridgerider.problems import create

PROBLEMS = [("lever-game", {}), ("tree-rl", {"depth": 4, "tree_seed": 2})]


def _points(problem, count: int, scale: float) -> torch.Tensor:
    """The MIS and seeded perturbations of it."""
    mis = find_mis(problem).theta
    g = torch.Generator().manual_seed(7)
    noise = torch.randn(count - 1, mis.numel(), generator=g, dtype=mis.dtype)
    return torch.cat([mis[None], mis[None] + scale * noise])


@pytest.mark.parametrize(
    ("name", "params", "closed_form"), [*[(*p, True) for p in PROBLEMS], (*PROBLEMS[1], False)]
)
def test_batched_hessians_match_dense(name, params, closed_form):
    problem = create(name, params)
    thetas = _points(problem, 4, 0.3)
    h = batched_hessians(problem.loss, thetas, problem.hessian if closed_form else None)
    for t, hb in zip(thetas, h, strict=True):
        ref = dense_hessian(problem.loss, t)
        assert torch.allclose(hb, ref, atol=1e-10, rtol=1e-8)


def test_batched_spectra_match_symmetric_eigh():
    problem = create("tree-rl", {"depth": 4, "tree_seed": 2})
    thetas = _points(problem, 5, 0.5)
    values, vectors = batched_spectra(problem.loss, thetas)
    for t, val, vec in zip(thetas, values, vectors, strict=True):
        ref_val, ref_vec = symmetric_eigh(dense_hessian(problem.loss, t))
        assert torch.allclose(val, ref_val, atol=1e-10)
        # Well-separated eigenvalues: the canonically signed vectors agree one by one.
        gaps = torch.diff(ref_val)
        ok = torch.ones_like(ref_val, dtype=torch.bool)
        ok[:-1] &= gaps > 1e-6
        ok[1:] &= gaps > 1e-6
        assert ok.sum() > 0
        assert torch.allclose(vec[:, ok], ref_vec[:, ok], atol=1e-6)


@pytest.mark.parametrize(("name", "params"), PROBLEMS)
def test_batched_get_ridges_same_fingerprints_and_eigenvalues(name, params):
    problem = create(name, params)
    settings = RRSettings(**problem.default_settings())
    thetas = _points(problem, 3, 0.05)
    batched = batched_get_ridges(problem.loss, thetas, settings, hessian_fn=problem.hessian)
    for t, (ridges, values) in zip(thetas, batched, strict=True):
        ref_ridges, ref_values = get_ridges(problem.loss, t, settings, hessian_fn=problem.hessian)
        assert [r.choice for r in ridges] == [r.choice for r in ref_ridges]
        assert torch.allclose(values, ref_values, atol=1e-12)
        for r, q in zip(ridges, ref_ridges, strict=True):
            assert r.eigenvalue == pytest.approx(q.eigenvalue, abs=1e-12)
            assert abs(float(r.direction @ q.direction)) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(("name", "params"), PROBLEMS)
@pytest.mark.parametrize("update", ["exact", "fixed"])
def test_ride_batched_matches_ride(name, params, update):
    problem = create(name, params)
    settings = RRSettings(**{**problem.default_settings(), "update": update})
    mis = find_mis(problem).theta
    ridges, _ = get_ridges(problem.loss, mis, settings, hessian_fn=problem.hessian)
    ridges = ridges[:6]
    thetas = torch.stack([mis] * len(ridges))
    dirs = torch.stack([r.direction for r in ridges])
    lams = [r.eigenvalue for r in ridges]
    outs = ride_batched(problem.loss, thetas, dirs, lams, settings, 60, problem.hessian)
    assert len(outs) == len(ridges)
    for r, out in zip(ridges, outs, strict=True):
        ref = ride(problem.loss, mis, r.direction, r.eigenvalue, settings, 60, problem.hessian)
        assert out.steps == ref.steps
        assert out.end_reason == ref.end_reason
        assert out.crossings == ref.crossings
        # Inside a zero-curvature symmetry (softmax shifts) rounding may pick another vector of
        # the null space: θ then differs there by ~1e-4 without changing the loss.
        assert torch.allclose(out.theta, ref.theta, atol=1e-3)
        assert out.eigenvalue == pytest.approx(ref.eigenvalue, abs=1e-9)
        assert out.losses == pytest.approx(ref.losses, abs=1e-12)
    assert sum(o.steps for o in outs) > 0


def test_ride_batched_refuses_approx():
    problem = create("lever-game")
    settings = RRSettings(method="approx")
    theta = torch.zeros(1, problem.n_params, dtype=torch.float64)
    with pytest.raises(ValueError, match="method"):
        ride_batched(problem.loss, theta, theta + 1, [-1.0], settings)


@pytest.mark.parametrize("spread", [0.0, 1e-4, 0.3])
def test_continuation_is_ridge_update_exact(spread):
    """The batched rule and update_exact agree, clusters included (spread 0: repeated)."""
    from ridgerider.core.batched import continuation
    from ridgerider.core.update_ridge import update_exact

    g = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(12, 12, generator=g, dtype=torch.float64))
    values = torch.tensor([-2.0, -1.0, -1.0 + spread, -1.0 + 2 * spread, *range(8)]).double()
    h = q @ torch.diag(values) @ q.T
    settings = RRSettings(cluster_tol=0.05)
    for trial in range(4):
        e_prev = q[:, 1 + trial % 3] + 0.2 * torch.randn(12, generator=g, dtype=torch.float64)
        e_prev = e_prev / e_prev.norm()
        ref = update_exact(lambda _x: h, torch.zeros(12), e_prev, settings)
        val, vec = symmetric_eigh(h)
        out = continuation(val, vec, e_prev, settings)
        assert torch.allclose(out[0], ref[0], atol=1e-10)
        assert out[1:] == pytest.approx(ref[1:], abs=1e-10)
