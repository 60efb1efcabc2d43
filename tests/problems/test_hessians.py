"""Closed-form problem Hessians against autograd's dense Hessian."""

import pytest
import torch

from ridgerider.core import dense_hessian
from ridgerider.problems import create


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("lever-game", {}),
        ("lever-game", {"payoffs": "1,1,1,1,1,1,1,1,1,0.9"}),
        ("coord-game", {"classes": "1x3,0.7x2,0.6x1", "seed": 4}),
        ("tree-rl", {"depth": 4, "tree_seed": 1}),
        ("tree-rl", {"depth": 8, "tree_seed": 3}),
        ("tree-rl", {"depth": 10, "tree_seed": 2, "deep_rewards": False}),
        ("toy2d", {}),
    ],
)
@pytest.mark.parametrize("scale", [0.0, 0.3, 3.0])
def test_problem_hessian_matches_autograd(name, params, scale):
    problem = create(name, params)
    gen = torch.Generator().manual_seed(7)
    theta = scale * torch.randn(problem.n_params, generator=gen, dtype=torch.float64)
    reference = dense_hessian(problem.loss, theta)
    assert torch.allclose(problem.hessian(theta), reference, atol=1e-12, rtol=1e-9)
