"""lanczos_bottom against torch.linalg.eigh, including clustered and repeated eigenvalues."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from ridgerider.core.curvature import hvp
from ridgerider.core.lanczos import lanczos_bottom
from ridgerider.problems.registry import create

D = torch.float64


def with_spectrum(values: list[float], seed: int) -> Tensor:
    """A dense symmetric matrix with exactly these eigenvalues and a random eigenbasis."""
    g = torch.Generator().manual_seed(seed)
    n = len(values)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=D))
    a = (q * torch.tensor(values, dtype=D)) @ q.T
    return 0.5 * (a + a.T)


def random_symmetric(n: int, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    b = torch.randn(n, n, generator=g, dtype=D)
    return 0.5 * (b + b.T)


def run(a: Tensor, k: int, seed: int = 0, **kw):
    g = torch.Generator().manual_seed(seed)
    return lanczos_bottom(lambda v: a @ v, a.shape[0], k, generator=g, **kw)


def groups(values: Tensor, gap: float) -> list[list[int]]:
    """Indices of runs of eigenvalues closer than ``gap`` (values ascending)."""
    out: list[list[int]] = [[0]]
    for i in range(1, len(values)):
        if float(values[i] - values[i - 1]) <= gap:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def assert_matches_reference(a: Tensor, res, k: int, gap: float = 1e-3) -> None:
    """Values to 1e-8 relative; vectors by principal angles, group by group."""
    ref_vals, ref_vecs = torch.linalg.eigh(a)
    scale = float(ref_vals.abs().max())
    n = a.shape[0]
    assert res.converged
    assert res.values.shape == (k,)
    assert res.vectors.shape == (n, k)
    assert bool((res.values[1:] >= res.values[:-1]).all()), "values must be ascending"
    assert float((res.values - ref_vals[:k]).abs().max()) <= 1e-8 * scale
    q = res.vectors
    torch.testing.assert_close(q.T @ q, torch.eye(k, dtype=D), rtol=0, atol=1e-10)
    # Residuals: each returned pair is an eigenpair.
    r = a @ q - q * res.values
    assert float(r.norm(dim=0).max()) <= 1e-6 * scale
    # Canonical sign: the first entry of (near-)largest magnitude of each column is positive.
    for j in range(k):
        mags = q[:, j].abs()
        first = int(torch.nonzero(mags >= mags.max() * (1 - 1e-7))[0])
        assert q[first, j] > 0
    for grp in groups(ref_vals, gap):
        if grp[0] >= k:
            break
        ref_span = ref_vecs[:, grp]
        inside = [i for i in grp if i < k]
        found = q[:, inside]
        sv = torch.linalg.svdvals(ref_span.T @ found)
        # Every found vector lies in the group's eigenspace (all principal angles zero); for a
        # complete group the spans coincide.
        assert float((1 - sv).abs().max()) <= 1e-7, (grp, sv)


@pytest.mark.parametrize("k", [1, 2, 5, 12])
@pytest.mark.parametrize("seed", [0, 1])
def test_random_symmetric(k, seed):
    a = random_symmetric(40, seed)
    assert_matches_reference(a, run(a, k, seed), k)


def test_k_equals_n():
    a = random_symmetric(9, 3)
    assert_matches_reference(a, run(a, 9), 9)


def test_clustered_bottom_gaps_1e_6():
    bulk = torch.linspace(-1.0, 4.0, 45).tolist()
    vals = [-3.0, -3.0 + 1e-6, -3.0 + 2e-6, -2.0, -2.0 + 1e-6, *bulk]
    a = with_spectrum(vals, 1)
    for k in (3, 5, 7):
        res = run(a, k, seed=k)
        # Each near-degenerate cluster is compared as a subspace.
        assert_matches_reference(a, res, k, gap=1e-5)
        ref = torch.linalg.eigvalsh(a)
        # The 1e-6 splittings themselves are resolved.
        torch.testing.assert_close(
            res.values[1:3] - res.values[:2], ref[1:3] - ref[:2], rtol=0, atol=1e-9
        )


@pytest.mark.parametrize("k", [3, 6, 9, 10, 12])
def test_repeated_multiplicities_3_and_6(k):
    bulk = torch.linspace(-1.0, 4.0, 41).tolist()
    vals = [-2.0] * 3 + [-1.5] * 6 + bulk
    a = with_spectrum(vals, 2)
    res = run(a, k, seed=k)
    assert_matches_reference(a, res, k, gap=1e-9)
    if k >= 3:
        torch.testing.assert_close(res.values[:3], torch.full((3,), -2.0, dtype=D))
    if k >= 9:
        torch.testing.assert_close(res.values[3:9], torch.full((6,), -1.5, dtype=D))


def test_repeated_bottom_with_short_krylov_runs_and_restarts():
    n = 150
    vals = [-5.0] * 6 + [-4.0, -3.5, -3.5 + 1e-6] + torch.linspace(0.0, 1.0, n - 9).tolist()
    a = with_spectrum(vals, 5)
    res = run(a, 9, max_steps=40)
    assert_matches_reference(a, res, 9, gap=1e-5)


def test_too_few_restarts_reports_not_converged():
    vals = [-2.0] * 6 + torch.linspace(0.0, 1.0, 30).tolist()
    a = with_spectrum(vals, 6)
    res = run(a, 6, max_restarts=1)
    # One Krylov run cannot resolve a sextuplet: the result is flagged, not silently wrong.
    assert not res.converged
    ref = torch.linalg.eigvalsh(a)[:6]
    assert len(res.values) < 6 or not torch.allclose(res.values, ref)
    assert run(a, 6).converged


def test_reproducible_with_same_generator():
    a = random_symmetric(30, 7)
    r1, r2 = run(a, 4, seed=3), run(a, 4, seed=3)
    assert torch.equal(r1.values, r2.values)
    assert torch.equal(r1.vectors, r2.vectors)
    assert r1.matvecs == r2.matvecs > 0


@pytest.mark.parametrize("k", [0, -1, 11])
def test_bad_k_raises(k):
    a = random_symmetric(10, 0)
    with pytest.raises(ValueError, match="k must be"):
        run(a, k)


def test_on_hvp_of_lever_game_mis():
    """Through Hessian-vector products: the lever game's bottom spectrum (sextuplet included)."""
    game = create("lever-game", {})
    theta = game.analytic_mis()
    n = game.n_params
    res = lanczos_bottom(
        lambda v: hvp(game.loss, theta, v), n, 9, generator=torch.Generator().manual_seed(0)
    )
    h = torch.func.hessian(game.loss)(theta)
    assert_matches_reference(0.5 * (h + h.T), res, 9, gap=1e-9)
