"""Curvature primitives against independent references (torch.func, finite differences)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from ridgerider.core.curvature import (
    canonical_sign,
    dense_hessian,
    gradient,
    hvp,
    symmetric_eigh,
    value_and_gradient,
)
from ridgerider.problems.registry import create

D = torch.float64


def smooth_loss(n: int, seed: int):
    """A random smooth nonquadratic loss: tanh and softplus of linear maps plus quartic terms."""
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(2 * n, n, generator=g, dtype=D) / n**0.5
    w2 = torch.randn(n, n, generator=g, dtype=D) / n**0.5
    b = torch.randn(2 * n, generator=g, dtype=D)
    c = torch.rand(n, generator=g, dtype=D)
    u = torch.randn(n, generator=g, dtype=D)

    def loss(theta: Tensor) -> Tensor:
        return (
            torch.tanh(w1 @ theta + b).sum()
            + torch.nn.functional.softplus(w2 @ theta).sum()
            + 0.1 * (c * theta**4).sum()
            + (u @ theta) ** 3 / 6
            + torch.cos(theta[0] * theta[-1])
        )

    return loss


def _cases():
    lever = create("lever-game", {})
    tree = create("tree-rl", {"depth": 4, "tree_seed": 2})
    return [
        ("smooth7", smooth_loss(7, 0), 7),
        ("smooth23", smooth_loss(23, 1), 23),
        ("lever-game", lever.loss, lever.n_params),
        ("tree-rl", tree.loss, tree.n_params),
    ]


CASES = _cases()
IDS = [c[0] for c in CASES]


def _func_hessian(loss, theta: Tensor) -> Tensor:
    return torch.func.hessian(loss)(theta)


@pytest.mark.parametrize(("name", "loss", "n"), CASES, ids=IDS)
def test_gradient_matches_torch_func(name, loss, n):
    theta = torch.randn(n, generator=torch.Generator().manual_seed(5), dtype=D)
    ref = torch.func.grad(loss)(theta)
    got = gradient(loss, theta)
    assert got.shape == theta.shape
    assert not got.requires_grad
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    value, g = value_and_gradient(loss, theta)
    assert not value.requires_grad and not g.requires_grad
    assert float(value) == pytest.approx(float(loss(theta)), rel=1e-14)
    torch.testing.assert_close(g, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("name", "loss", "n"), CASES, ids=IDS)
def test_dense_hessian_matches_torch_func(name, loss, n):
    theta = torch.randn(n, generator=torch.Generator().manual_seed(6), dtype=D)
    h = dense_hessian(loss, theta)
    ref = _func_hessian(loss, theta)
    assert h.shape == (n, n)
    torch.testing.assert_close(h, h.T, rtol=0, atol=0)
    torch.testing.assert_close(h, 0.5 * (ref + ref.T), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("name", "loss", "n"), CASES, ids=IDS)
def test_dense_hessian_matches_finite_differences(name, loss, n):
    theta = torch.randn(n, generator=torch.Generator().manual_seed(7), dtype=D)
    h = dense_hessian(loss, theta)
    eps = 1e-5
    cols = []
    for i in range(n):
        d = torch.zeros(n, dtype=D)
        d[i] = eps
        cols.append((gradient(loss, theta + d) - gradient(loss, theta - d)) / (2 * eps))
    fd = torch.stack(cols, dim=1)
    fd = 0.5 * (fd + fd.T)
    scale = max(1.0, float(h.abs().max()))
    assert float((h - fd).abs().max()) <= 1e-7 * scale


@pytest.mark.parametrize(("name", "loss", "n"), CASES, ids=IDS)
def test_hvp_single_vector_matches_dense(name, loss, n):
    g = torch.Generator().manual_seed(8)
    theta = torch.randn(n, generator=g, dtype=D)
    h = _func_hessian(loss, theta)
    for _ in range(3):
        v = torch.randn(n, generator=g, dtype=D)
        hv = hvp(loss, theta, v)
        assert hv.shape == (n,)
        assert not hv.requires_grad
        torch.testing.assert_close(hv, h @ v, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("name", "loss", "n"), CASES, ids=IDS)
@pytest.mark.parametrize("b", [1, 2, 5])
def test_hvp_block_matches_dense(name, loss, n, b):
    g = torch.Generator().manual_seed(9 + b)
    theta = torch.randn(n, generator=g, dtype=D)
    h = _func_hessian(loss, theta)
    v = torch.randn(n, b, generator=g, dtype=D)
    hv = hvp(loss, theta, v)
    assert hv.shape == (n, b)
    assert hv.is_contiguous()
    torch.testing.assert_close(hv, h @ v, rtol=1e-10, atol=1e-10)
    # Each column agrees with the single-vector path.
    for j in range(b):
        torch.testing.assert_close(hv[:, j], hvp(loss, theta, v[:, j]), rtol=1e-12, atol=1e-12)


def test_hvp_does_not_touch_theta_or_its_graph():
    loss = smooth_loss(5, 3)
    theta = torch.randn(5, dtype=D, requires_grad=True)
    before = theta.detach().clone()
    hv = hvp(loss, theta, torch.ones(5, dtype=D))
    assert theta.grad is None
    assert not hv.requires_grad
    torch.testing.assert_close(theta.detach(), before, rtol=0, atol=0)


def test_hvp_of_quadratic_is_exact():
    g = torch.Generator().manual_seed(10)
    a = torch.randn(9, 9, generator=g, dtype=D)
    a = a + a.T
    theta = torch.randn(9, generator=g, dtype=D)
    v = torch.randn(9, 4, generator=g, dtype=D)
    got = hvp(lambda x: 0.5 * x @ a @ x, theta, v)
    torch.testing.assert_close(got, a @ v, rtol=1e-13, atol=1e-13)


# --- canonical_sign -------------------------------------------------------------------------


def test_canonical_sign_largest_magnitude_entry_positive():
    g = torch.Generator().manual_seed(11)
    m = torch.randn(12, 8, generator=g, dtype=D)
    out = canonical_sign(m)
    for j in range(8):
        i = int(m[:, j].abs().argmax())
        assert out[i, j] > 0
        # Each column is either unchanged or negated.
        assert torch.equal(out[:, j], m[:, j]) or torch.equal(out[:, j], -m[:, j])


def test_canonical_sign_same_for_v_and_minus_v():
    g = torch.Generator().manual_seed(12)
    for _ in range(20):
        v = torch.randn(15, generator=g, dtype=D)
        assert torch.equal(canonical_sign(v), canonical_sign(-v))
    m = torch.randn(6, 4, generator=g, dtype=D)
    flips = torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=D)
    assert torch.equal(canonical_sign(m), canonical_sign(m * flips))


def test_canonical_sign_ties_break_by_lowest_index():
    v = torch.tensor([0.1, 1.0, -1.0, 0.3], dtype=D)
    assert torch.equal(canonical_sign(v), v)
    assert torch.equal(canonical_sign(-v), v)
    # Entries equal up to floating-point noise still tie, so noise cannot flip the sign.
    w = torch.tensor([0.5, -0.5 - 1e-13, 0.2], dtype=D)
    assert canonical_sign(w)[0] > 0
    assert canonical_sign(-w)[0] > 0


def test_canonical_sign_zero_column_is_left_alone():
    m = torch.zeros(3, 2, dtype=D)
    m[:, 1] = torch.tensor([-2.0, 1.0, 0.0])
    out = canonical_sign(m)
    assert torch.equal(out[:, 0], torch.zeros(3, dtype=D))
    assert torch.equal(out[:, 1], torch.tensor([2.0, -1.0, 0.0], dtype=D))


def test_symmetric_eigh_matches_reference_and_is_deterministic():
    g = torch.Generator().manual_seed(13)
    a = torch.randn(10, 10, generator=g, dtype=D)
    a = a + a.T
    vals, vecs = symmetric_eigh(a)
    ref_vals, ref_vecs = torch.linalg.eigh(a)
    torch.testing.assert_close(vals, ref_vals, rtol=1e-12, atol=1e-12)
    assert bool((vals[1:] >= vals[:-1]).all())
    torch.testing.assert_close(a @ vecs, vecs * vals, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(vecs.T @ vecs, torch.eye(10, dtype=D), rtol=0, atol=1e-12)
    # Same vectors whatever sign the solver returned: compare with canonical reference.
    torch.testing.assert_close(vecs, canonical_sign(ref_vecs), rtol=1e-10, atol=1e-10)
    # A slightly asymmetric input is symmetrised first.
    noisy = a + 1e-9 * torch.triu(torch.ones(10, 10, dtype=D), 1)
    vals2, _ = symmetric_eigh(noisy)
    torch.testing.assert_close(vals2, torch.linalg.eigvalsh(0.5 * (noisy + noisy.T)))
