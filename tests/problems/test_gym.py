"""gym-tabular and gym-policy: exact J against gymnasium, DiCE against exact, replay, refusals."""

from __future__ import annotations

import math

import gymnasium
import numpy as np
import pytest
import torch

from ridgerider.core import RRSettings, find_mis
from ridgerider.core.curvature import dense_hessian, gradient
from ridgerider.core.expand import expand
from ridgerider.core.search import root_branch
from ridgerider.problems import ParamError, create
from ridgerider.problems.dice import dice_objective
from ridgerider.problems.gym_hessians import dice_hessian


def _theta(problem, scale: float, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn(problem.n_params, generator=gen, dtype=torch.float64)


def _gymnasium_returns(problem, theta: torch.Tensor, episodes: int) -> np.ndarray:
    """Discounted returns of ``episodes`` episodes of π_θ in gymnasium's own environment."""
    env = gymnasium.make(
        problem.params.env_id, max_episode_steps=problem.horizon, **problem.params.env_kwargs
    )
    policy = problem.policy(theta).numpy()
    rng = np.random.default_rng(1)
    out = np.empty(episodes)
    for i in range(episodes):
        s, _ = env.reset(seed=i)
        total, disc, done = 0.0, 1.0, False
        while not done:
            a = rng.choice(policy.shape[1], p=policy[s])
            s, r, term, trunc, _ = env.step(a)
            total += disc * r
            disc *= problem.gamma
            done = term or trunc
        out[i] = total
    return out


@pytest.mark.parametrize(
    ("params", "scale"),
    [({"env_id": "FrozenLake-v1"}, 0.5), ({"env_id": "CliffWalking-v1", "gamma": 0.9}, None)],
)
def test_exact_return_matches_gymnasium_monte_carlo(params, scale) -> None:
    problem = create("gym-tabular", params)
    if scale is None:  # mostly the safe way (up, right along row 2, down), so episodes are short
        logits = torch.zeros(4, 12, 4, dtype=torch.float64)
        logits[:, :, 1] = 3.0
        logits[:, 11, :] = torch.tensor([0.0, 0.0, 3.0, 0.0], dtype=torch.float64)
        logits[3, 0] = torch.tensor([3.0, 0.0, 0.0, 0.0], dtype=torch.float64)
        logits[:2, :, :] = torch.tensor([0.0, 0.0, 3.0, 0.0], dtype=torch.float64)
        theta = logits.reshape(-1)
    else:
        theta = _theta(problem, scale)
    returns = _gymnasium_returns(problem, theta, 10_000)
    se = returns.std(ddof=1) / math.sqrt(len(returns))
    exact = float(problem.exact_return(theta))
    assert abs(returns.mean() - exact) <= 3 * se, (returns.mean(), exact, se)


def _dice_errors(problem, theta: torch.Tensor, v: torch.Tensor, n: int) -> tuple[float, float]:
    """Relative errors of the DiCE gradient and Hessian-vector product from ``n`` episodes."""
    sampled = problem.with_sampling(f"n{n}", samples=n)
    x = theta.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(sampled.loss(x), x, create_graph=True)
    (hv,) = torch.autograd.grad(g, x, v)
    g_exact = gradient(problem.loss, theta)
    hv_exact = problem.hessian(theta) @ v
    return (
        float((g.detach() - g_exact).norm() / g_exact.norm()),
        float((hv - hv_exact).norm() / hv_exact.norm()),
    )


def test_dice_gradient_and_hvp_converge_like_one_over_sqrt_n() -> None:
    problem = create("gym-tabular", {"env_id": "FrozenLake-v1", "curvature": "dice"})
    theta = _theta(problem, 0.5)
    v = _theta(problem, 1.0, seed=1)
    sizes = np.array([100, 1_000, 10_000])
    errors = np.array([_dice_errors(problem, theta, v, int(n)) for n in sizes])
    for which in (0, 1):
        # The least-squares slope of log(error) against log(N): -1/2 for a 1/√N rate; it
        # must be within a factor 2 of it, and the error must fall at every step.
        slope = np.polyfit(np.log(sizes), np.log(errors[:, which]), 1)[0]
        assert -1.0 <= slope <= -0.25, (which, errors)
        assert (np.diff(errors[:, which]) < 0).all()


def test_closed_form_hessians_equal_autograd() -> None:
    problem = create("gym-tabular", {"env_id": "CliffWalking-v1", "gamma": 0.9})
    theta = _theta(problem, 1.0)
    exact = problem.hessian(theta)
    assert torch.allclose(exact, dense_hessian(problem.loss, theta), atol=1e-10, rtol=1e-9)
    sampled = problem.with_sampling("h", samples=20)
    episodes = sampled.episodes(theta)
    logits = theta.reshape(problem.model.n_states, -1)

    def surrogate(x: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(x.reshape(logits.shape), dim=1)
        taken = logp[episodes.states, episodes.actions]
        return dice_objective(taken, episodes.rewards, episodes.alive, problem.gamma)

    closed = dice_hessian(logits, episodes, problem.gamma)
    assert torch.allclose(closed, dense_hessian(surrogate, theta), atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("method", ["exact", "approx"])
def test_a_dice_branch_replays_identically(method: str) -> None:
    """Exact RR (dense DiCE Hessians) and approximate RR (DiCE Hessian-vector products only)."""
    problem = create(
        "gym-tabular", {"env_id": "FrozenLake-v1", "curvature": "dice", "samples": 200}
    )
    settings = RRSettings(
        method=method, n_ridges=2, max_ride_steps=3, signs="descent", overlap_threshold=0.8
    )
    mis = find_mis(problem)
    root = expand(problem, settings, root_branch(mis, seed=7))
    assert root.children
    moved = 0
    for child in root.children[: 3 if method == "exact" else 2]:
        first, again = (expand(problem, settings, child) for _ in range(2))
        assert torch.equal(first.node.theta, again.node.theta)
        assert first.node.losses == again.node.losses
        assert [c.direction.tolist() for c in first.children] == [
            c.direction.tolist() for c in again.children
        ]
        moved += first.node.steps
    assert moved > 0


@pytest.mark.parametrize(
    ("name", "params", "field", "needle"),
    [
        ("gym-tabular", {"env_id": "NoSuchEnv-v9"}, "env_id", "NoSuchEnv-v9"),
        ("gym-tabular", {"env_id": "CartPole-v1"}, "env_id", "CartPole-v1"),
        ("gym-tabular", {"env_kwargs": {"map_name": "9x9"}}, "env_kwargs", "FrozenLake-v1"),
        ("gym-tabular", {"env_kwargs": {"render_mode": "human"}}, "env_kwargs", "render_mode"),
        ("gym-tabular", {"env_kwargs": {"desc": {"a": 1}}}, "env_kwargs", ""),
        ("gym-policy", {"curvature": "exact"}, "curvature", "model"),
        ("gym-policy", {"env_id": "FrozenLake-v1"}, "env_id", "vector observations"),
    ],
)
def test_invalid_specs_are_param_errors_naming_the_field(name, params, field, needle) -> None:
    with pytest.raises(ParamError) as info:
        create(name, params)
    assert info.value.field.startswith(field) and needle in str(info.value)


def test_cartpole_dice_loss_is_minus_the_sampled_return_and_replays() -> None:
    problem = create("gym-policy", {"samples": 8})
    theta = problem.analytic_mis()
    a, b = problem.at_node("0+"), problem.at_node("0+")
    assert float(a.loss(theta)) == float(b.loss(theta)) < 0
    assert torch.equal(gradient(a.loss, theta), gradient(b.loss, theta))
    assert float(problem.at_node("1-").loss(theta)) != float(a.loss(theta))


def test_cli_refuses_an_unknown_env_id_with_exit_2(tmp_path) -> None:
    from click.testing import CliRunner

    from ridgerider.cli import main

    url = f"sqlite:///{tmp_path / 'a.db'}"
    args = ["run", "gym-tabular", "--set", "env_id=Nope-v0", "--database-url", url]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "env_id" in result.output and "Nope-v0" in result.output
