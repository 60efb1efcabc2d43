"""``gym-tabular``: a tabular softmax policy on a gymnasium environment with a known model.

Any registered environment whose ``unwrapped`` exposes ``P`` and ``initial_state_distrib``
qualifies: FrozenLake-v1 (4×4 or 8×8, slippery or not), CliffWalking-v1, Taxi-v4. θ holds one
logit per (state, action); the policy is ``π(·|s) = softmax(θ_s)``.

Loss. ``L(θ) = −J(θ)``, J the expected discounted return from the initial distribution, exact:
``V = (I − γP_π)⁻¹ r_π`` in float64 (``P_π``: the policy's continuing transitions, terminations
absorb), ``J = μ₀ᵀV``, differentiable by autograd to every order.

Curvature. ``curvature="exact"`` differentiates that J. ``curvature="dice"`` makes every
derivative a branch takes (gradient, dense Hessian, Hessian-vector products) a DiCE estimate
from ``samples`` episodes (:mod:`ridgerider.problems.dice`), sampled by a vectorised loop over
the known model (:func:`~ridgerider.problems.gym_model.sample_episodes`, not gymnasium's vector
environments, which would add per-step Python overhead for the same draws). The loss *value*
stays the exact J (the backtracking line search reads only values, and the model is known).
The episodes' random numbers derive from ``sample_seed`` and a node's key (:meth:`at_node`,
called by ``expand``): GetRidges at a node and the rides of all its children use that node's
episodes, so a ride starts from the samples its ridge was computed from and every point of it
reuses the same numbers (common random numbers: successive Hessians along a ride differ by the
policy's change, not by fresh noise), while each new node branches on fresh episodes; a branch
replays identically on any worker. Outside the tree (the MIS search and its report)
derivatives are exact.

Horizon. J is the infinite-horizon value. ``horizon`` caps sampled episodes and the greedy path
and is the window of ``success_rate``; by default it is the first H with ``γ^H ≤ 1e-8``, so the
truncated episodes estimate J up to ``1e-8·max|r|/(1−γ)``.

MIS. The maximum-entropy saddle of :mod:`ridgerider.core.mis` (``‖∇J‖² − β·Σ_s H(π_s)``,
β = 0.01, L-BFGS from the uniform policy) on the exact J, for both curvatures. Solutions group
by the greedy path (most likely outcome of the greedy action at each step).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor

from ridgerider.problems.base import ParamError, RegisteredProblem
from ridgerider.problems.dice import dice_objective
from ridgerider.problems.gym_env import GymParams, SampleCounter, make_env, rollout_seed
from ridgerider.problems.gym_hessians import dice_hessian, exact_hessian
from ridgerider.problems.gym_model import Episodes, TabularModel, sample_episodes

__all__ = ["MAX_LOGITS", "GymTabular", "GymTabularParams"]

MAX_LOGITS = 4096
"""Largest state × action table accepted (dense Hessians are ``MAX_LOGITS²`` floats)."""


class GymTabularParams(GymParams):
    """Environment, discount, horizon and curvature of a tabular gymnasium problem."""


class GymTabular(RegisteredProblem):
    """Tabular softmax policy on a gymnasium environment's known model; exact or DiCE curvature."""

    name = "gym-tabular"
    summary = "gymnasium FrozenLake/CliffWalking/Taxi..., tabular softmax, exact or DiCE curvature"
    Params = GymTabularParams
    params: GymTabularParams
    mis_beta = 1e-2

    def __init__(self, params: GymTabularParams) -> None:
        super().__init__(params)
        env = make_env(self.name, params)
        try:
            self.model = TabularModel.from_env(env)
        except Exception as exc:  # no model, or one this reader cannot make sense of
            raise ParamError(self.name, "env_id", f"{params.env_id!r}: {exc}") from None
        finally:
            env.close()
        if self.n_params > MAX_LOGITS:
            raise ParamError(
                self.name, "env_kwargs", f"{self.n_params} logits, more than {MAX_LOGITS}"
            )
        self._cont, self._reward, self._success, self._mu0 = self.model.tensors()
        self.gamma = params.gamma
        self.horizon = params.episode_steps()
        self.samples = params.samples
        self.counter = SampleCounter()
        """Episodes sampled by this problem and its per-branch copies."""
        self.node: str | None = None
        """Key of the node the samples belong to; ``None`` (outside the tree): exact."""

    @property
    def n_params(self) -> int:
        """One logit per (state, action)."""
        return self.model.n_states * self.model.n_actions

    @property
    def sampled(self) -> bool:
        """Whether derivatives come from sampled episodes (``dice``, inside a branch)."""
        return self.params.curvature == "dice" and self.node is not None

    def policy(self, theta: Tensor) -> Tensor:
        """``π(a | s)`` as ``[S, A]``."""
        return torch.softmax(theta.reshape(self.model.n_states, -1), dim=1)

    def _chain(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """The policy's continuing transition matrix ``[S, S]`` and expected reward ``[S]``."""
        pi = self.policy(theta)
        return torch.einsum("sa,sat->st", pi, self._cont), (pi * self._reward).sum(1)

    def exact_return(self, theta: Tensor) -> Tensor:
        """J by the Bellman linear system (float64, differentiable)."""
        p_pi, r_pi = self._chain(theta)
        eye = torch.eye(self.model.n_states, dtype=p_pi.dtype)
        return self._mu0 @ torch.linalg.solve(eye - self.gamma * p_pi, r_pi)

    def loss(self, theta: Tensor) -> Tensor:
        """``−J``; with ``dice``, derivatives from the branch's sampled episodes."""
        if not self.sampled or not (theta.requires_grad and torch.is_grad_enabled()):
            return -self.exact_return(theta)
        with torch.no_grad():
            value = -self.exact_return(theta)
        surrogate = self.dice_surrogate(theta)
        return value - (surrogate - surrogate.detach())

    def episodes(self, theta: Tensor) -> Episodes:
        """``samples`` episodes of ``π_θ`` drawn from the branch's seed (counted)."""
        with torch.no_grad():
            policy = self.policy(theta.detach()).numpy()
        seed = rollout_seed(self.params.sample_seed, self.node or "")
        self.counter.add(self.samples)
        return sample_episodes(self.model, policy, self.samples, self.horizon, seed)

    def dice_surrogate(self, theta: Tensor) -> Tensor:
        """The DiCE objective of the branch's episodes at ``θ``."""
        episodes = self.episodes(theta)
        logp = torch.log_softmax(theta.reshape(self.model.n_states, -1), dim=1)
        taken = logp[episodes.states, episodes.actions]
        return dice_objective(taken, episodes.rewards, episodes.alive, self.gamma)

    def hessian(self, theta: Tensor) -> Tensor:
        """Closed-form Hessian of the loss: of −J, or of the DiCE surrogate's −S."""
        logits = theta.detach().reshape(self.model.n_states, -1)
        if self.sampled:
            return -dice_hessian(logits, self.episodes(theta), self.gamma)
        return -exact_hessian(logits, self._cont, self._reward, self._mu0, self.gamma)

    def at_node(self, key: str) -> GymTabular:
        """With ``dice``: a copy sampling from node ``key`` (sharing the sample counter)."""
        return self.with_sampling(key) if self.params.curvature == "dice" else self

    def with_sampling(self, key: str, samples: int | None = None) -> GymTabular:
        """A copy whose episodes derive from ``key`` (and ``samples`` episodes per point)."""
        out = copy.copy(self)
        out.node = key
        out.samples = self.samples if samples is None else samples
        return out

    def success_rate(self, theta: Tensor) -> float:
        """Probability that an episode ends by a successful termination within the horizon."""
        with torch.no_grad():
            p_pi, _ = self._chain(theta)
            s_pi = (self.policy(theta) * self._success).sum(1)
            x = torch.zeros_like(s_pi)
            for _ in range(self.horizon):
                x = s_pi + p_pi @ x
            return float(self._mu0 @ x)

    def greedy_path(self, theta: Tensor) -> tuple[list[int], bool]:
        """States the greedy policy visits (most likely outcomes) and whether it succeeds.

        Of equally likely outcomes the middle one is taken: FrozenLake lists a slippery move
        as (slip left, intended, slip right), so the path follows the intended moves.

        The path starts at the most likely initial state and stops at a termination (its last
        entry is then the state the episode ended in), at a state already visited, or at the
        horizon.
        """
        logits = theta.detach().reshape(self.model.n_states, -1)
        m = self.model
        s = int(m.initial.argmax())
        path = [s]
        for _ in range(self.horizon):
            a = int(logits[s].argmax())
            tied = (m.prob[s, a] >= m.prob[s, a].max() - 1e-12).nonzero()[0]
            k = int(tied[len(tied) // 2])  # FrozenLake's slips tie: the middle is the move
            nxt = int(m.next_state[s, a, k])
            if m.terminated[s, a, k]:
                path.append(nxt)
                return path, bool(m.success[s, a, k])
            if nxt in path:
                break
            path.append(nxt)
            s = nxt
        return path, False

    def metrics(self, theta: Tensor) -> dict[str, Any]:
        """Exact return and success rate, and the greedy policy's path."""
        path, success = self.greedy_path(theta)
        with torch.no_grad():
            value = float(self.exact_return(theta))
        return {
            "return": value,
            "success_rate": self.success_rate(theta),
            "greedy_path": path,
            "greedy_success": success,
        }

    def solution_key(self, theta: Tensor) -> str:
        """The greedy path, e.g. ``"0>4>8>9>13>14>15"`` (``"…!"``: it ends in success)."""
        path, success = self.greedy_path(theta)
        return ">".join(map(str, path)) + ("!" if success else "")

    def invariance(self, theta: Tensor) -> Tensor:
        """Sum over states of the policy's entropy."""
        logp = torch.log_softmax(theta.reshape(self.model.n_states, -1), dim=1)
        return -(logp.exp() * logp).sum()

    def default_settings(self) -> dict[str, Any]:
        """Settings for tabular control (see ``benchmarks/gym_dice.py``)."""
        return {"n_ridges": 6, "alpha": 1.0, "zero_tol": 1e-6, "max_depth": 3}
