"""``gym-policy``: a small softmax policy on a gymnasium environment without a known model.

For environments with a vector observation and discrete actions (CartPole-v1, Acrobot-v1,
MountainCar-v0, ...). The policy is linear (``hidden=0``) or a one-hidden-layer tanh MLP, with
softmax over the actions. There is no model, so everything is sampled: the loss is the DiCE
surrogate of ``samples`` episodes (:mod:`ridgerider.problems.dice`), whose value is minus their
mean discounted return and whose gradient and Hessian (by autograd) are DiCE estimates;
``curvature="exact"`` is refused. Episodes run in gymnasium's vector environments
(``gymnasium.make_vec``: the environment's own vectorised implementation where it has one, else
synchronous copies), reset with a seed from ``sample_seed`` and the node's key
(:meth:`~ridgerider.core.problem.Problem.at_node`), and actions are Gumbel-max draws from the
same seed, so a branch replays identically. Outside the tree (the MIS report, baselines that
pass no key) the samples come from the key ``""``.

Episodes last at most ``horizon`` steps: by default the environment's own time limit
(CartPole-v1: 500), else the first H with ``γ^H ≤ 1e-8``. The loss estimates the discounted
return of those truncated episodes.

MIS: the output layer at zero gives the uniform policy (maximum entropy) whatever the hidden
layer; the hidden layer is a fixed seeded draw. Solutions are labelled by the greedy policy's
return bucket (``return/10`` rounded down) of one seeded episode.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from torch import Tensor

from ridgerider.problems.base import ParamError, RegisteredProblem
from ridgerider.problems.dice import dice_objective
from ridgerider.problems.gym_env import GymParams, SampleCounter, make_env, rollout_seed

__all__ = ["GymPolicy", "GymPolicyParams"]


class GymPolicyParams(GymParams):
    """Environment, policy size and sampling of a model-free gymnasium problem."""

    env_id: str = Field("CartPole-v1", min_length=1, max_length=200, description="gymnasium id")
    curvature: Literal["exact", "dice"] = Field(
        "dice", description="only 'dice': without a model every derivative is sampled"
    )
    samples: int = Field(100, ge=2, le=100_000, description="episodes per point")
    hidden: int = Field(0, ge=0, le=256, description="hidden tanh units (0: linear policy)")

    @field_validator("curvature")
    @classmethod
    def _sampled_only(cls, value: str) -> str:
        if value != "dice":
            raise ValueError("'exact' needs a model of the environment; gym-policy has none")
        return value


class GymPolicy(RegisteredProblem):
    """Linear or MLP softmax policy; DiCE loss from gymnasium vector-environment episodes."""

    name = "gym-policy"
    summary = "gymnasium CartPole etc. (no model), linear/MLP softmax policy, DiCE curvature"
    Params = GymPolicyParams
    params: GymPolicyParams

    def __init__(self, params: GymPolicyParams) -> None:
        super().__init__(params)
        import gymnasium

        env = make_env(self.name, params)
        obs_space, act_space = env.observation_space, env.action_space
        self._spec_steps = env.spec.max_episode_steps if env.spec is not None else None
        env.close()
        if not isinstance(act_space, gymnasium.spaces.Discrete) or len(obs_space.shape) != 1:
            raise ParamError(
                self.name,
                "env_id",
                f"{params.env_id!r}: needs vector observations and discrete actions",
            )
        self.obs_dim = int(obs_space.shape[0])
        self.n_actions = int(act_space.n)
        self.horizon = params.horizon or self._spec_steps or params.episode_steps()
        self.counter = SampleCounter()
        self.node = ""
        gen = torch.Generator().manual_seed(0)
        h = params.hidden
        self._hidden = (
            torch.randn(h, self.obs_dim + 1, generator=gen, dtype=self.dtype)
            / (self.obs_dim + 1) ** 0.5
            if h
            else None
        )

    @property
    def n_params(self) -> int:
        """Output layer (and the hidden layer, for an MLP): weights and biases."""
        width = self.params.hidden or self.obs_dim
        extra = self.params.hidden * (self.obs_dim + 1)
        return self.n_actions * (width + 1) + extra

    def logits(self, theta: Tensor, obs: Tensor) -> Tensor:
        """Action logits ``[..., A]`` for observations ``[..., d]``."""
        h = self.params.hidden
        x = obs
        if h:
            w1 = theta[: h * (self.obs_dim + 1)].reshape(h, self.obs_dim + 1)
            x = torch.tanh(x @ w1[:, :-1].T + w1[:, -1])
            theta = theta[h * (self.obs_dim + 1) :]
        w = theta.reshape(self.n_actions, -1)
        return x @ w[:, :-1].T + w[:, -1]

    def episodes(self, theta: Tensor, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``samples`` episodes: observations ``[N, T, d]``, actions, rewards, steps taken."""
        import gymnasium

        n = self.params.samples
        envs = gymnasium.make_vec(
            self.params.env_id,
            num_envs=n,
            vectorization_mode=_mode(self.params.env_id),
            **self.params.env_kwargs,
        )
        rng = np.random.default_rng(seed)
        obs, _ = envs.reset(seed=seed % 2**31)
        alive = np.ones(n, dtype=bool)
        rows: list[tuple[np.ndarray, ...]] = []
        with torch.no_grad():
            for _ in range(self.horizon):
                logits = self.logits(theta.detach(), torch.as_tensor(obs, dtype=self.dtype))
                logp = torch.log_softmax(logits, dim=1).numpy()
                a = np.argmax(logp + rng.gumbel(size=logp.shape), axis=1)
                nxt, r, term, trunc, _ = envs.step(a)
                rows.append((np.asarray(obs, dtype=np.float64), a, np.where(alive, r, 0.0), alive))
                alive = alive & ~(term | trunc)
                obs = nxt
                if not alive.any():
                    break
        envs.close()
        self.counter.add(n)
        o, a, r, m = (np.stack(c, axis=1) for c in zip(*rows, strict=True))
        return (torch.from_numpy(o), torch.from_numpy(a), torch.from_numpy(r), torch.from_numpy(m))

    def loss(self, theta: Tensor) -> Tensor:
        """Minus the DiCE surrogate of the node's episodes (value: minus their mean return)."""
        obs, actions, rewards, alive = self.episodes(
            theta, rollout_seed(self.params.sample_seed, self.node)
        )
        logp = torch.log_softmax(self.logits(theta, obs), dim=-1)
        taken = logp.gather(-1, actions[..., None])[..., 0]
        return -dice_objective(taken, rewards, alive, self.params.gamma)

    def at_node(self, key: str) -> GymPolicy:
        """A copy sampling from node ``key`` (sharing the sample counter)."""
        out = copy.copy(self)
        out.node = key
        return out

    def analytic_mis(self) -> Tensor:
        """The fixed hidden layer and a zero output layer: the uniform policy."""
        theta = torch.zeros(self.n_params, dtype=self.dtype)
        if self._hidden is not None:
            theta[: self._hidden.numel()] = self._hidden.reshape(-1)
        return theta

    def random_init(self, generator: torch.Generator) -> Tensor:
        """Standard normal output weights (and the MIS's hidden layer)."""
        theta = self.analytic_mis()
        k = self._hidden.numel() if self._hidden is not None else 0
        theta[k:] = torch.randn(self.n_params - k, generator=generator, dtype=self.dtype)
        return theta

    def greedy_return(self, theta: Tensor, seed: int = 0) -> float:
        """Undiscounted return of one greedy episode from a seeded reset."""
        env = make_env(self.name, self.params)
        obs, _ = env.reset(seed=seed)
        total = 0.0
        with torch.no_grad():
            for _ in range(self.horizon):
                logits = self.logits(theta.detach(), torch.as_tensor(obs, dtype=self.dtype))
                obs, r, term, trunc, _ = env.step(int(logits.argmax()))
                total += float(r)
                if term or trunc:
                    break
        env.close()
        return total

    def metrics(self, theta: Tensor) -> dict[str, Any]:
        """The sampled return of the node's episodes and one greedy episode's return."""
        with torch.no_grad():
            value = -float(self.loss(theta))
        return {"return": value, "greedy_return": self.greedy_return(theta)}

    def solution_key(self, theta: Tensor) -> str:
        """The greedy episode's return, in buckets of 10."""
        return str(int(self.greedy_return(theta) // 10) * 10)

    def invariance(self, theta: Tensor) -> None:
        """No entropy term: the MIS is analytic."""
        return None

    def default_settings(self) -> dict[str, Any]:
        """Small trees of short rides (every point costs ``samples`` episodes)."""
        return {
            "n_ridges": 3,
            "alpha": 1.0,
            "max_depth": 2,
            "max_ride_steps": 20,
            "signs": "descent",
            "overlap_threshold": 0.8,
        }


def _mode(env_id: str) -> str:
    """``vector_entry_point`` where gymnasium has a vectorised implementation, else ``sync``."""
    import gymnasium

    return "vector_entry_point" if gymnasium.spec(env_id).vector_entry_point else "sync"
