"""Every HVP method against the dense Hessian, for single vectors and [n, b] blocks."""

from __future__ import annotations

import pytest
import torch

from ridgerider.core.curvature import dense_hessian, gradient
from ridgerider.core.hvp import HVP_METHODS, make_hvp

torch.set_num_threads(1)


def _mlp_loss(seed: int = 0):
    """A small tanh MLP with softmax cross-entropy; θ flat (n = 5·6 + 6 + 6·3 + 3 = 57)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(40, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (40,), generator=g)

    def loss(theta: torch.Tensor) -> torch.Tensor:
        w1 = theta[:30].reshape(6, 5)
        b1 = theta[30:36]
        w2 = theta[36:54].reshape(3, 6)
        b2 = theta[54:57]
        h = torch.tanh(x @ w1.T + b1)
        return torch.nn.functional.cross_entropy(h @ w2.T + b2, y)

    theta = torch.randn(57, generator=g, dtype=torch.float64)
    return loss, theta


@pytest.fixture(scope="module")
def case():
    loss, theta = _mlp_loss()
    return loss, theta, dense_hessian(loss, theta)


@pytest.mark.parametrize("method", HVP_METHODS)
def test_single_vector_matches_dense(case, method, gen):
    loss, theta, h = case
    op = make_hvp(loss, theta, method)
    for _ in range(3):  # the cached graph must survive repeated use
        v = torch.randn(theta.numel(), generator=gen, dtype=torch.float64)
        hv = op(v)
        assert hv.shape == v.shape
        torch.testing.assert_close(hv, h @ v, rtol=1e-10, atol=1e-12)
    assert op.matvecs == 3


@pytest.mark.parametrize("method", HVP_METHODS)
@pytest.mark.parametrize("b", [1, 4])
def test_block_matches_dense(case, method, b, gen):
    loss, theta, h = case
    op = make_hvp(loss, theta, method)
    v = torch.randn(theta.numel(), b, generator=gen, dtype=torch.float64)
    hv = op(v)
    assert hv.shape == (theta.numel(), b)
    torch.testing.assert_close(hv, h @ v, rtol=1e-10, atol=1e-12)
    assert op.matvecs == b


def test_non_contiguous_block_and_dtype_cast(case, gen):
    loss, theta, h = case
    op = make_hvp(loss, theta, "batched")
    rows = torch.randn(3, theta.numel(), generator=gen, dtype=torch.float32)
    hv = op(rows.T)  # a transposed view, float32
    assert hv.dtype == torch.float64
    torch.testing.assert_close(hv, h @ rows.T.double(), rtol=1e-9, atol=1e-10)


def test_auto_picks_cached_on_cpu(case):
    loss, theta, _ = case
    assert make_hvp(loss, theta).method == "cached"


@pytest.mark.parametrize("method", HVP_METHODS)
def test_loss_and_gradient_exposed(case, method):
    loss, theta, _ = case
    op = make_hvp(loss, theta, method)
    torch.testing.assert_close(op.grad, gradient(loss, theta))
    assert op.loss == pytest.approx(float(loss(theta)))


def test_operator_is_fixed_at_theta(case):
    loss, theta, h = case
    t = theta.clone()
    op = make_hvp(loss, t, "cached")
    t.add_(1.0)  # mutating the caller's tensor must not move the operator
    v = torch.ones(theta.numel(), dtype=torch.float64)
    torch.testing.assert_close(op(v), h @ v, rtol=1e-10, atol=1e-12)


def test_bad_shapes_and_methods_raise(case):
    loss, theta, _ = case
    op = make_hvp(loss, theta, "cached")
    with pytest.raises(ValueError, match="expected shape"):
        op(torch.ones(theta.numel() + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="expected shape"):
        op(torch.ones(2, theta.numel(), 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="method must be one of"):
        make_hvp(loss, theta, "finite_difference")
