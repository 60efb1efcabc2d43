"""The DiCE objective: sampled episodes whose derivatives of every order estimate those of J.

For episodes ``i`` with log-probabilities ``log π(a_t | s_t)`` of the actions taken (a graph to
θ), discounted rewards ``γ^t r_t`` and the magic box ``□(x) = exp(x − ⊥x)`` (``⊥``: stop
gradient; ``□`` evaluates to 1 and differentiates like ``exp``), the surrogate is

``S = mean_i Σ_t [ □(W_t) γ^t r_t + (□(W_{t−1}) − □(W_t)) b_t ]``, ``W_t = Σ_{t' ≤ t} log π_t'``

(Foerster et al. 2018; the baseline term is Mao et al. 2019's, unbiased to every order because
``b_t`` depends on neither ``a_t`` nor what follows it). ``S`` evaluates to the mean discounted
return; its gradient and Hessian, by autograd, are unbiased estimates of ``∇J`` and ``∇²J``.
The baseline ``b_t`` is the leave-one-out mean, over the other episodes still running at ``t``,
of the discounted return from ``t`` on (so it depends only on other episodes).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["dice_coefficients", "dice_objective", "magic_box"]


def magic_box(x: Tensor) -> Tensor:
    """``□(x) = exp(x − ⊥x)``: 1 in value, ``exp`` in every derivative."""
    return torch.exp(x - x.detach())


def dice_objective(logp: Tensor, rewards: Tensor, alive: Tensor, gamma: float) -> Tensor:
    """The DiCE surrogate of the expected discounted return (module docstring).

    Args:
        logp: ``[N, T]`` log-probabilities of the actions taken (differentiable in θ).
        rewards: ``[N, T]`` rewards of the steps (no graph).
        alive: ``[N, T]`` whether step ``t`` of episode ``i`` was taken (before termination
            and within the horizon); other entries are ignored.
        gamma: the discount.
    """
    mask = alive.to(logp.dtype)
    steps = torch.arange(logp.shape[1], dtype=logp.dtype, device=logp.device)
    disc = rewards.to(logp.dtype) * mask * gamma**steps
    logp = logp * mask
    w = torch.cumsum(logp, dim=1)
    w_prev = w - logp
    togo = disc.flip(1).cumsum(1).flip(1)  # Σ_{t' ≥ t} γ^t' r_t'
    running = mask.sum(0)
    total = (togo * mask).sum(0)
    baseline = (total - togo * mask) / (running - mask).clamp_min(1.0)
    box_w = magic_box(w)
    main = (box_w * disc).sum(1)
    control = ((magic_box(w_prev) - box_w) * baseline * mask).sum(1)
    return (main + control).mean()


def dice_coefficients(rewards: Tensor, alive: Tensor, gamma: float) -> Tensor:
    """``c [N, T]`` with ``S = mean_i Σ_t c_t·□(W_t) + const`` (the surrogate, regrouped).

    ``c_t = γ^t r_t − b_t + b_{t+1}`` on steps taken (the baseline of step ``t+1`` multiplies
    ``□(W_t)``), so ``∇S = mean_i Σ_t c_t ∇W_t`` and
    ``∇²S = mean_i Σ_t c_t (∇W_t ∇W_tᵀ + ∇²W_t)``: closed forms for structured policies.
    """
    mask = alive.to(torch.float64)
    steps = torch.arange(rewards.shape[1], dtype=torch.float64)
    disc = rewards.to(torch.float64) * mask * gamma**steps
    togo = disc.flip(1).cumsum(1).flip(1)
    running = mask.sum(0)
    baseline = ((togo * mask).sum(0) - togo * mask) / (running - mask).clamp_min(1.0) * mask
    nxt = torch.cat([baseline[:, 1:], torch.zeros_like(baseline[:, :1])], dim=1)
    return disc - baseline + nxt
