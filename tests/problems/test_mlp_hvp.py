"""The MLP classifiers' hand-written HVP (R-op) against the dense autograd Hessian."""

from __future__ import annotations

import pytest
import torch

from ridgerider.core.curvature import dense_hessian
from ridgerider.core.hvp import make_hvp
from ridgerider.problems import create
from ridgerider.problems.digits import DigitsMLP
from ridgerider.problems.mlp import MLPHessian


@pytest.mark.parametrize(
    "params",
    [
        {"hidden": "5,4"},
        {"hidden": "6", "start": "init"},
        {"hidden": "4,3,5", "weight_decay": 0.01},
        {"hidden": "5,4", "init_scale": 3.0},
    ],
)
def test_r_op_equals_the_dense_hessian(params: dict) -> None:
    problem = create("digits-mlp", params)
    g = torch.Generator().manual_seed(1)
    theta = problem.start() + 0.3 * torch.randn(problem.n_params, generator=g, dtype=torch.float64)
    h = dense_hessian(problem.loss, theta)
    op = problem.exact_hvp(theta)
    assert isinstance(op, MLPHessian)
    v = torch.randn(problem.n_params, 3, generator=g, dtype=torch.float64)
    block = op(v)
    assert block.shape == v.shape
    torch.testing.assert_close(block, h @ v, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(op(v[:, 1]), h @ v[:, 1], rtol=1e-10, atol=1e-12)


def test_make_hvp_prefers_the_problems_own_product() -> None:
    problem = create("digits-mlp", {"hidden": "5,4"})
    theta = problem.start()
    op = make_hvp(problem.loss, theta, analytic=problem.exact_hvp)
    assert op.method == "analytic"
    v = torch.randn(
        problem.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(
        op(v), make_hvp(problem.loss, theta, "cached")(v), rtol=1e-10, atol=1e-12
    )
    assert op.matvecs == 1 and op.loss == pytest.approx(float(problem.loss(theta)))
    assert make_hvp(problem.loss, theta, "cached", analytic=problem.exact_hvp).method == "cached"
    with pytest.raises(ValueError, match="analytic"):
        make_hvp(problem.loss, theta, "analytic")


def test_a_subclass_that_changes_the_loss_gets_no_r_op() -> None:
    class Smoothed(DigitsMLP):
        def loss(self, theta: torch.Tensor) -> torch.Tensor:
            return super().loss(theta) + theta.pow(4).sum()

    base = create("digits-mlp", {"hidden": "3"})
    problem = Smoothed(base.params)
    assert problem.exact_hvp(problem.start()) is None
    assert make_hvp(problem.loss, problem.start(), analytic=problem.exact_hvp).method == "cached"
