"""bottom_eigenpairs against torch.linalg.eigh: values, subspaces, clusters, repeats, warm start."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as sla
import torch

from ridgerider.core.eigensolver import bottom_eigenpairs

torch.set_num_threads(1)
F64 = torch.float64


def _matrix(values: list[float] | torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A dense symmetric matrix with the given spectrum and a random eigenbasis."""
    vals = torch.as_tensor(values, dtype=F64)
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(vals), len(vals), generator=g, dtype=F64))
    return (q * vals) @ q.T


class Counting:
    """A dense matvec that records the shapes it sees and counts products."""

    def __init__(self, a: torch.Tensor) -> None:
        self.a, self.count, self.shapes = a, 0, set()

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        assert v.dim() in (1, 2) and v.shape[0] == self.a.shape[0]
        self.shapes.add(v.dim())
        self.count += 1 if v.dim() == 1 else v.shape[1]
        return self.a @ v


def _check(a: torch.Tensor, res, k: int, tol: float) -> None:
    """Values to 1e-5 relative, residual contract, subspace by principal angles."""
    vals, vecs = torch.linalg.eigh(a)
    scale = float(vals.abs().max())
    assert res.converged
    assert res.values.shape == (k,) and res.vectors.shape == (a.shape[0], k)
    assert bool((res.values[1:] >= res.values[:-1]).all())
    assert float((res.values - vals[:k]).abs().max()) <= 1e-5 * scale
    torch.testing.assert_close(
        res.vectors.T @ res.vectors, torch.eye(k, dtype=F64), atol=1e-8, rtol=0
    )
    resid = (a @ res.vectors - res.vectors * res.values).norm(dim=0)
    assert float(resid.max()) <= tol * scale * (1 + 1e-6)
    # Principal angles between the found and the true bottom-k subspaces. If λ_k is repeated
    # past k, compare against the whole eigenspace it belongs to.
    kth = vals[k - 1]
    m = int((vals <= kth + 1e-9 * scale).sum())
    cosines = torch.linalg.svdvals(vecs[:, :m].T @ res.vectors)
    assert float(cosines.min()) >= 1 - 1e-6


def _spread(n: int) -> list[float]:
    return torch.linspace(-1.0, 4.0, n).tolist()


def test_cold_well_separated(gen):
    a = _matrix(_spread(300))
    mv = Counting(a)
    res = bottom_eigenpairs(mv, 300, 6, tol=1e-8, generator=gen)
    _check(a, res, 6, 1e-8)
    assert res.matvecs == mv.count
    assert mv.shapes == {1}  # Lanczos uses single vectors
    assert res.guards.shape[0] == 300


def test_cold_resolves_a_tight_cluster(gen):
    cluster = [-1.0, -1.0 + 1e-5, -1.0 + 2e-5, -1.0 + 5e-5, -0.9999]
    a = _matrix(cluster + torch.linspace(-0.9, 4.0, 295).tolist(), seed=1)
    res = bottom_eigenpairs(Counting(a), 300, 5, tol=1e-9, generator=gen)
    _check(a, res, 5, 1e-9)


def test_cold_block_finds_repeated_eigenvalues(gen):
    spectrum = [-2.0] * 3 + [-1.0] * 2 + torch.linspace(-0.5, 4.0, 295).tolist()
    a = _matrix(spectrum, seed=2)
    mv = Counting(a)
    res = bottom_eigenpairs(mv, 300, 5, tol=1e-8, generator=gen, block=4)
    _check(a, res, 5, 1e-8)
    assert 2 in mv.shapes  # blocks went through the [n, b] path
    torch.testing.assert_close(res.values, torch.tensor([-2.0] * 3 + [-1.0] * 2, dtype=F64))


def test_invariant_krylov_space_restarts_and_finds_copies(gen):
    # Only two distinct eigenvalues: a Krylov space from one vector is invariant after two
    # products, so the copies of -1 can only be found by restarting from fresh directions.
    a = _matrix([-1.0] * 4 + [1.0] * 196, seed=3)
    res = bottom_eigenpairs(Counting(a), 200, 4, tol=1e-8, generator=gen)
    _check(a, res, 4, 1e-8)


def test_repeated_value_straddling_k(gen):
    # k = 2 cuts through a triple eigenvalue: any two vectors of the eigenspace are right.
    a = _matrix([-3.0] + [-2.0] * 3 + torch.linspace(-1.0, 2.0, 196).tolist(), seed=4)
    res = bottom_eigenpairs(Counting(a), 200, 2, tol=1e-8, generator=gen, block=3)
    _check(a, res, 2, 1e-8)


def test_warm_start_from_perturbed_operator_is_cheaper(gen):
    base = torch.linspace(-1.0, -0.9, 8).tolist() + torch.linspace(-0.85, 4.0, 392).tolist()
    a0 = _matrix(base, seed=5)
    cold = bottom_eigenpairs(Counting(a0), 400, 8, tol=1e-6, generator=gen)
    _check(a0, cold, 8, 1e-6)
    g = torch.Generator().manual_seed(7)
    e = torch.randn(400, 400, generator=g, dtype=F64)
    a1 = a0 + 1e-6 * (e + e.T)  # θ moved a little
    cold1 = bottom_eigenpairs(Counting(a1), 400, 8, tol=1e-6, generator=gen)
    mv = Counting(a1)
    init = torch.cat([cold.vectors, cold.guards], dim=1)
    warm = bottom_eigenpairs(mv, 400, 8, tol=1e-6, init=init, norm=cold.norm_estimate)
    _check(a1, warm, 8, 1e-6)
    assert 2 in mv.shapes  # blocks of residuals went through the [n, b] path
    assert warm.matvecs == mv.count
    assert warm.matvecs < 0.5 * cold1.matvecs


def test_warm_start_resolves_repeated_values(gen):
    spectrum = [-1.0] * 3 + [-0.5] * 2 + torch.linspace(-0.2, 3.0, 295).tolist()
    a = _matrix(spectrum, seed=6)
    vecs = torch.linalg.eigh(a).eigenvectors
    init = vecs[:, :6] + 1e-3 * torch.randn(300, 6, generator=gen, dtype=F64)
    res = bottom_eigenpairs(Counting(a), 300, 5, tol=1e-9, init=init)
    _check(a, res, 5, 1e-9)


def test_thick_restart_keeps_results_correct(gen):
    cluster = torch.linspace(-1.0, -0.99, 6).tolist()
    a = _matrix(cluster + torch.linspace(-0.95, 4.0, 394).tolist(), seed=8)
    mv = Counting(a)
    res = bottom_eigenpairs(mv, 400, 6, tol=1e-8, generator=gen, max_basis=30)
    _check(a, res, 6, 1e-8)
    assert res.matvecs > 30  # it really went past one basis


def test_small_operator_is_solved_densely():
    a = _matrix(torch.linspace(-2.0, 2.0, 12).tolist(), seed=9)
    res = bottom_eigenpairs(Counting(a), 12, 3)
    _check(a, res, 3, 1e-4)
    assert res.matvecs == 12


def test_budget_is_respected_and_reported(gen):
    a = _matrix(_spread(300), seed=10)
    mv = Counting(a)
    res = bottom_eigenpairs(mv, 300, 6, tol=1e-12, generator=gen, max_matvecs=20)
    assert not res.converged
    assert res.matvecs == mv.count <= 20


def test_reproducible_with_generator():
    a = _matrix(_spread(200), seed=11)
    r1 = bottom_eigenpairs(Counting(a), 200, 4, generator=torch.Generator().manual_seed(3))
    r2 = bottom_eigenpairs(Counting(a), 200, 4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(r1.vectors, r2.vectors) and r1.matvecs == r2.matvecs


def test_fewer_products_than_arpack_on_a_clustered_spectrum(gen):
    # Negative values packed together far below a wide positive spectrum, as in a network
    # Hessian. ARPACK's tolerance is relative to |λ|; matching it to ours (tol·‖A‖) on the
    # pair with the smallest |λ| makes ARPACK's test the looser one on every pair.
    g = torch.Generator().manual_seed(12)
    neg = -0.05 - 0.01 * torch.rand(20, generator=g, dtype=F64)
    pos = torch.linspace(0.0, 5.0, 580, dtype=F64)
    a = _matrix(torch.cat([neg, pos]), seed=12)
    n, k, tol = 600, 10, 1e-4
    ours = bottom_eigenpairs(Counting(a), n, k, tol=tol, generator=gen)
    assert ours.converged
    resid = (a @ ours.vectors - ours.vectors * ours.values).norm(dim=0)
    assert float(resid.max()) <= tol * 5.0
    lam_k = float(torch.sort(neg).values[k - 1].abs())
    mv = Counting(a)
    op = sla.LinearOperator(
        (n, n), matvec=lambda x: mv(torch.from_numpy(x.ravel())).numpy(), dtype=np.float64
    )
    v0 = np.random.default_rng(0).standard_normal(n)
    sla.eigsh(op, k=k, which="SA", tol=tol * 5.0 / lam_k, v0=v0)
    assert ours.matvecs <= mv.count


def test_argument_errors():
    a = _matrix(_spread(50))
    with pytest.raises(ValueError, match="k must be"):
        bottom_eigenpairs(Counting(a), 50, 0)
    with pytest.raises(ValueError, match="k must be"):
        bottom_eigenpairs(Counting(a), 50, 51)
    with pytest.raises(ValueError, match="tol"):
        bottom_eigenpairs(Counting(a), 50, 2, tol=0.0)
    with pytest.raises(ValueError, match="init must have shape"):
        bottom_eigenpairs(Counting(a), 50, 2, init=torch.ones(49, 2, dtype=F64))


def _repeated(multiplicity: int, n: int) -> list[float]:
    """−0.2 repeated, then −0.19, −0.185, … (30 values) and a positive spectrum up to 1."""
    negative = [-0.2] * multiplicity + [-0.19 + 0.005 * j for j in range(30)]
    return negative + torch.linspace(0.0, 1.0, n - len(negative)).tolist()


@pytest.mark.parametrize(("multiplicity", "k"), [(2, 10), (4, 10), (16, 10), (16, 20)])
def test_defaults_find_every_copy_of_a_repeated_eigenvalue(multiplicity, k):
    # One start vector sees one vector of each eigenspace; with its defaults the solver must
    # still return every copy of −0.2 among its k pairs (all of them when k ≤ multiplicity).
    n = 1000
    a = _matrix(_repeated(multiplicity, n), seed=20 + multiplicity)
    mv = Counting(a)
    res = bottom_eigenpairs(mv, n, k, generator=torch.Generator().manual_seed(multiplicity))
    _check(a, res, k, 1e-4)
    assert int((res.values < -0.2 + 1e-6).sum()) == min(multiplicity, k)
    assert res.matvecs == mv.count


def test_converged_is_false_until_missing_copies_are_ruled_out(gen):
    # Control: a budget that lets the k pairs pass the residual test but leaves no products to
    # look for the missing copies must not be reported as converged.
    n, k = 1000, 10
    a = _matrix(_repeated(4, n), seed=24)
    unchecked = bottom_eigenpairs(Counting(a), n, k, generator=gen, verify=False)
    assert unchecked.converged  # the residual test alone cannot see the missing copies...
    assert int((unchecked.values < -0.2 + 1e-6).sum()) < 4  # ...and some are missing
    gen.manual_seed(1234)
    capped = bottom_eigenpairs(Counting(a), n, k, generator=gen, max_matvecs=unchecked.matvecs)
    assert not capped.converged
    assert capped.matvecs <= unchecked.matvecs
    full = bottom_eigenpairs(Counting(a), n, k, generator=gen)
    _check(a, full, k, 1e-4)


def test_probe_mass_bound_holds_along_a_lanczos_run(gen):
    # The Christoffel bound a probe relies on: the start vector's spectral mass at or below any
    # a under every Ritz value is at most mass_below(T, a), and it tightens as the run grows.
    from ridgerider.core.eigen_basis import KrylovBasis
    from ridgerider.core.eigen_probe import mass_below

    values = torch.cat([torch.tensor([-2.0, -1.9, -1.9], dtype=F64), torch.linspace(-1, 3, 297)])
    r = torch.randn(300, generator=gen, dtype=F64)
    r = r / r.norm()
    basis = KrylovBasis(300, F64, 8)
    basis.add(r[None], (values * r)[None])
    checked = 0
    for _ in range(30):
        t = basis.mm[: basis.m, : basis.m]
        top = float(torch.linalg.eigvalsh(t)[0])
        for a in torch.linspace(-2.5, top - 1e-9, 7).tolist():
            mass = float((r[values <= a] ** 2).sum())
            assert mass <= mass_below(t, a) * (1 + 1e-9)
            checked += mass > 0
        w = basis.orthonormalise(basis.av[basis.m - 1].clone()[None])
        basis.add(w, values * w)
    assert checked > 0  # some points had mass below them, so the bound was tested
    assert mass_below(basis.mm[: basis.m, : basis.m], -2.5) < 1e-12
