"""A discrete gymnasium environment's known model (``env.unwrapped.P``) as arrays.

``P[s][a]`` lists the outcomes ``(probability, next state, reward, terminated)`` of action ``a``
in state ``s``. From it: the continuing transition tensor and expected rewards (for the exact
Bellman solve), padded outcome tables (for sampling episodes in one vectorised loop over the
model, without gymnasium's per-step overhead) and the successful terminations: a terminating
outcome *succeeds* when it pays the largest reward any terminating outcome pays (FrozenLake's
goal, CliffWalking's goal, Taxi's drop-off).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["Episodes", "TabularModel", "sample_episodes"]


@dataclass(frozen=True)
class TabularModel:
    """Outcome tables ``[S, A, K]`` (K: most outcomes of one action) and derived tensors."""

    n_states: int
    n_actions: int
    next_state: np.ndarray
    prob: np.ndarray
    cdf: np.ndarray
    """Cumulative outcome probabilities; padding entries are 1 so they are never drawn."""
    reward: np.ndarray
    terminated: np.ndarray
    success: np.ndarray
    initial: np.ndarray
    """Initial state distribution ``[S]``."""

    @classmethod
    def from_env(cls, env: object) -> TabularModel:
        """Read ``env.unwrapped.P`` and ``initial_state_distrib`` (``ValueError`` if absent)."""
        base = getattr(env, "unwrapped", env)
        table = getattr(base, "P", None)
        initial = getattr(base, "initial_state_distrib", None)
        if not isinstance(table, dict) or initial is None:
            raise ValueError("it exposes no model (unwrapped.P and initial_state_distrib)")
        n_s = len(table)
        n_a = len(table[0])
        k = max(len(table[s][a]) for s in range(n_s) for a in range(n_a))
        nxt = np.zeros((n_s, n_a, k), dtype=np.int64)
        prob = np.zeros((n_s, n_a, k))
        rew = np.zeros((n_s, n_a, k))
        term = np.zeros((n_s, n_a, k), dtype=bool)
        for s in range(n_s):
            for a in range(n_a):
                for j, (p, s2, r, done) in enumerate(table[s][a]):
                    nxt[s, a, j], prob[s, a, j], rew[s, a, j], term[s, a, j] = s2, p, r, done
        cdf = np.cumsum(prob, axis=2)
        last = k - 1 - np.argmax((prob > 0)[:, :, ::-1], axis=2)  # last possible outcome
        cdf[np.arange(k)[None, None, :] >= last[:, :, None]] = 1.0
        term_rewards = rew[term & (prob > 0)]
        best = term_rewards.max() if term_rewards.size else np.inf
        success = term & (prob > 0) & (rew >= best)
        init = np.asarray(initial, dtype=np.float64)
        return cls(n_s, n_a, nxt, prob, cdf, rew, term, success, init / init.sum())

    def tensors(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Continuing transitions ``[S, A, S]``, expected rewards and success ``[S, A]``, μ0."""
        prob = self.prob
        cont = np.zeros((self.n_states, self.n_actions, self.n_states))
        s_idx, a_idx, k_idx = np.nonzero(prob * ~self.terminated)
        target = self.next_state[s_idx, a_idx, k_idx]
        np.add.at(cont, (s_idx, a_idx, target), prob[s_idx, a_idx, k_idx])
        reward = (prob * self.reward).sum(2)
        success = (prob * self.success).sum(2)
        f64 = torch.float64
        return (
            torch.tensor(cont, dtype=f64),
            torch.tensor(reward, dtype=f64),
            torch.tensor(success, dtype=f64),
            torch.tensor(self.initial, dtype=f64),
        )


@dataclass(frozen=True)
class Episodes:
    """Sampled episodes ``[N, T]``: states, actions, rewards and which steps were taken."""

    states: Tensor
    actions: Tensor
    rewards: Tensor
    alive: Tensor
    success: Tensor
    """``[N]``: the episode ended by a successful termination."""


def sample_episodes(
    model: TabularModel, policy: np.ndarray, n: int, horizon: int, seed: int
) -> Episodes:
    """``n`` episodes of ``policy`` (``[S, A]`` probabilities), at most ``horizon`` steps each.

    One uniform draw per episode picks the start; at every step the action is the Gumbel-max
    ``argmax_a log π(a|s) + g_a`` and the outcome is drawn by inverse CDF from one uniform. The
    numbers are drawn for every episode at every step, so those an episode uses depend only on
    ``seed``, its index and the step: the same seed gives common random numbers across
    policies, and raising the probability of the actions an episode took never changes that
    episode (Gumbel-max is monotone; inverse CDF over actions is not). Stops early once every
    episode has terminated.
    """
    rng = np.random.default_rng(seed)
    init_cdf = np.cumsum(model.initial)
    s = np.minimum(np.searchsorted(init_cdf, rng.random(n), side="right"), model.n_states - 1)
    alive = np.ones(n, dtype=bool)
    success = np.zeros(n, dtype=bool)
    log_policy = np.log(policy)
    rows: list[tuple[np.ndarray, ...]] = []
    for _ in range(horizon):
        g = rng.gumbel(size=(n, model.n_actions))
        a = np.argmax(log_policy[s] + g, axis=1)
        k = (rng.random((n, 1)) > model.cdf[s, a]).sum(1)
        r = model.reward[s, a, k]
        rows.append((s, a, np.where(alive, r, 0.0), alive))
        done = model.terminated[s, a, k]
        success |= alive & model.success[s, a, k]
        alive = alive & ~done
        s = model.next_state[s, a, k]
        if not alive.any():
            break
    states, actions, rewards, taken = (np.stack(c, axis=1) for c in zip(*rows, strict=True))
    return Episodes(
        torch.from_numpy(states),
        torch.from_numpy(actions),
        torch.from_numpy(rewards),
        torch.from_numpy(taken),
        torch.from_numpy(success),
    )
