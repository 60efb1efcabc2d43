"""MIS search: the lever game's closed form and L-BFGS path, and the tree problem."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from ridgerider.core.curvature import gradient
from ridgerider.core.mis import find_mis, lowest_spectrum
from ridgerider.core.settings import MISSettings
from ridgerider.problems.registry import create

D = torch.float64


@pytest.fixture(scope="module")
def lever():
    return create("lever-game", {})


def assert_lever_spectrum(spectrum: list[float]) -> None:
    """RESEARCH.md: −0.0127, −0.0100, −0.0095 (once each), −0.0080 × 6, 0 × 2, then positives."""
    s = torch.tensor(spectrum, dtype=D)
    assert len(s) == 20
    assert bool((s[1:] >= s[:-1]).all())
    for got, want in zip(s[:3].tolist(), [-0.0127, -0.0100, -0.0095], strict=True):
        assert round(got, 4) == pytest.approx(want, abs=1e-12), (got, want)
    sextet = s[3:9]
    assert round(float(sextet.mean()), 4) == pytest.approx(-0.0080, abs=1e-12)
    assert float(sextet.max() - sextet.min()) < 1e-10, "the 1.0-lever eigenvalue is 6-fold"
    # The unique ones are genuinely distinct from each other and from the sextet.
    assert float(s[1] - s[0]) > 1e-4
    assert float(s[2] - s[1]) > 1e-5
    assert float(s[3] - s[2]) > 1e-4
    assert float(s[9:11].abs().max()) < 1e-9, "two zero eigenvalues (softmax shifts)"
    assert float(s[11]) > 1e-4, "then positives"


def test_lever_game_analytic_mis(lever):
    res = find_mis(lever)
    assert res.method == "analytic"
    assert res.iterations == 0
    assert res.grad_norm < 1e-6
    assert res.negative_eigenvalues == 9
    assert_lever_spectrum(res.spectrum)
    # p ∝ 1/r for both players: [0.0896 × 7, 0.1119 × 2, 0.1493].
    p, q = lever.policies(res.theta)
    inv = 1.0 / lever.payoffs
    torch.testing.assert_close(p, inv / inv.sum())
    torch.testing.assert_close(q, p)
    assert [round(float(x), 4) for x in p[[0, 7, 9]]] == [0.0896, 0.1119, 0.1493]
    assert res.loss == pytest.approx(-float((lever.payoffs * p * q).sum()), abs=1e-15)


def test_lever_game_lbfgs_mis_from_zero(lever):
    # Measured: ‖∇L‖ ≈ 2.3e-9 after 9 L-BFGS iterations from θ = 0.
    res = find_mis(lever, MISSettings(use_analytic=False))
    assert res.method == "lbfgs"
    assert res.iterations > 0
    assert res.grad_norm < 1e-6
    assert_lever_spectrum(res.spectrum)
    # It reaches the same fully mixed equilibrium as the closed form.
    p, q = lever.policies(res.theta)
    inv = 1.0 / lever.payoffs
    torch.testing.assert_close(p, inv / inv.sum(), rtol=0, atol=1e-6)
    torch.testing.assert_close(q, p, rtol=0, atol=1e-9)


def test_perturbation_is_seeded(lever):
    settings = MISSettings(perturbation=1e-3)
    a = find_mis(lever, settings, torch.Generator().manual_seed(1))
    b = find_mis(lever, settings, torch.Generator().manual_seed(1))
    c = find_mis(lever, settings, torch.Generator().manual_seed(2))
    assert torch.equal(a.theta, b.theta)
    assert not torch.equal(a.theta, c.theta)
    dist = float((a.theta - lever.analytic_mis()).norm())
    assert 1e-4 < dist < 1e-2
    assert a.grad_norm > 1e-9  # a perturbed MIS is no longer an exact saddle


@pytest.mark.parametrize("depth", [4, 6])
def test_tree_rl_mis_reduces_gradient(depth):
    tree = create("tree-rl", {"depth": depth})
    res = find_mis(tree, zero_tol=1e-6)
    g0 = float(gradient(tree.loss, torch.zeros(tree.n_params, dtype=D)).norm())
    assert res.method == "lbfgs"
    assert res.negative_eigenvalues > 0
    assert res.grad_norm == pytest.approx(float(gradient(tree.loss, res.theta).norm()))
    # Measured (goals at the bottom): 0.035 against 0.30 at θ = 0 (depth 6).
    assert res.grad_norm < 0.25 * g0
    assert res.spectrum == sorted(res.spectrum)
    assert sum(v < -1e-6 for v in res.spectrum) == res.negative_eigenvalues


def test_lowest_spectrum_matches_eigvalsh(lever):
    theta = torch.randn(lever.n_params, generator=torch.Generator().manual_seed(0), dtype=D)
    got = lowest_spectrum(lever.loss, theta, k=5)
    h = torch.func.hessian(lever.loss)(theta)
    torch.testing.assert_close(got, torch.linalg.eigvalsh(0.5 * (h + h.T))[:5])


@pytest.mark.parametrize(("name", "params"), [("lever-game", {}), ("tree-rl", {"depth": 6})])
def test_the_spectrum_comes_from_the_problems_closed_form_hessian(name: str, params: dict) -> None:
    """The same spectrum as autograd's Hessian, without importing sympy (autograd's batched
    grad outputs load it: 0.5 s of a command; torch.optim's dynamo import, which the CLI and
    workers skip with ``use_compute_threads``, would load it too)."""
    problem = create(name, params)
    res = find_mis(problem)
    theta = res.theta
    by_autograd = lowest_spectrum(problem.loss, theta)
    torch.testing.assert_close(torch.tensor(res.spectrum, dtype=D), by_autograd, rtol=0, atol=1e-12)
    code = (
        "import sys; from ridgerider.core.threads import use_compute_threads; "
        "use_compute_threads(); from ridgerider.core.mis import find_mis; "
        f"from ridgerider.problems.registry import create; find_mis(create({name!r}, {params!r}));"
        " print('sympy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
