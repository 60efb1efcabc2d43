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


@pytest.mark.parametrize("scale", [0.3, 3.0, 800.0])  # 800: softmaxes with π = 0 exactly
def test_tree_rl_gathers_the_exact_bits_of_the_path_product(scale: float) -> None:
    """``A = M·D`` gathered (``TreeRL._path_rows``) has the bits of the product itself.

    The product is the einsum the Hessian was first written with; every zero's sign too,
    where a softmax underflows to π = 0 as well.
    """
    problem = create("tree-rl", {"depth": 10, "tree_seed": 5555})
    gen = torch.Generator().manual_seed(11)
    theta = scale * torch.randn(4, problem.n_params, generator=gen, dtype=torch.float64)
    pi = torch.softmax(theta.reshape(4, -1, 2), dim=2)
    jac = torch.eye(2, dtype=pi.dtype) - pi[:, :, None, :]
    m = problem._incidence.reshape(-1, problem.n_decisions, 2)
    for k in range(4):
        product = torch.einsum("lsa,sab->lsb", m, jac[k]).reshape(m.shape[0], -1)
        got = problem._path_rows(pi[k : k + 1])[0]
        assert got.numpy().tobytes() == product.numpy().tobytes()
    assert (pi == 0).any() == (scale > 100)
