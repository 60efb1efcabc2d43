"""Closed-form Hessians of a tabular softmax policy's return: exact, and of the DiCE surrogate.

Both equal autograd's (tests compare them with ``dense_hessian``) at a fraction of the cost:
autograd differentiates the linear solve, or the ``N × T`` sampled graph, once per parameter.

Exact. With ``M = I − γP_π``, ``G = M⁻¹``, visitation ``d = Gᵀμ₀``, ``V = G r_π``,
``Q = R + γ P V`` and ``K[s,a,s'] = γ Σ_x P[s,a,x] G[x,s']``, the Hessian of J in the policy's
probabilities is ``d_s K[s,a,s'] Q[s',a'] + d_s' K[s',a',s] Q[s,a]`` and its gradient
``d_s Q[s,a]``; the softmax chain rule gives ``C_s H_π[s,s'] C_s'`` plus, on the diagonal
blocks, ``diag(π⊙u) − (π⊙u)πᵀ − π(π⊙u)ᵀ`` with ``u = ∇_π J_s − π_sᵀ∇_π J_s`` and
``C_s = diag(π_s) − π_sπ_sᵀ``.

DiCE. ``∇²S = mean_i Σ_t c_t (φ_t φ_tᵀ − Σ_{t' ≤ t} C_{s_t'})`` with ``φ_t = ∇W_t`` (the summed
``e_{s,a} − π_s`` of the actions taken so far) and ``c`` from
:func:`~ridgerider.problems.dice.dice_coefficients`: a weighted Gram matrix over the steps
taken, plus block-diagonal softmax curvature weighted by each state's suffix sums of ``c``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ridgerider.problems.dice import dice_coefficients
from ridgerider.problems.gym_model import Episodes

__all__ = ["dice_hessian", "exact_hessian"]

CHUNK = 64
"""Episodes per block of the Gram matrix (bounds memory at ``CHUNK·T·n`` floats)."""


def _softmax_blocks(pi: Tensor) -> Tensor:
    """``C_s = diag(π_s) − π_sπ_sᵀ`` for every state, ``[S, A, A]``."""
    return torch.diag_embed(pi) - pi[:, :, None] * pi[:, None, :]


def exact_hessian(
    logits: Tensor, cont: Tensor, reward: Tensor, mu0: Tensor, gamma: float
) -> Tensor:
    """``∇²J`` in θ (``[S·A, S·A]``) for logits ``[S, A]`` (module docstring)."""
    pi = torch.softmax(logits, dim=1)
    n_s, n_a = pi.shape
    p_pi = torch.einsum("sa,sat->st", pi, cont)
    g = torch.linalg.inv(torch.eye(n_s, dtype=pi.dtype) - gamma * p_pi)
    d = g.T @ mu0
    v = g @ (pi * reward).sum(1)
    q = reward + gamma * cont @ v
    k = gamma * torch.einsum("sax,xt->sat", cont, g)
    h_pi = d[:, None, None, None] * k[:, :, :, None] * q[None, None, :, :]
    h_pi = h_pi + h_pi.permute(2, 3, 0, 1)
    c = _softmax_blocks(pi)
    h = torch.einsum("sab,sbtc,tcd->satd", c, h_pi, c)
    grad_pi = d[:, None] * q
    u = grad_pi - (pi * grad_pi).sum(1, keepdim=True)
    pu = pi * u
    own = torch.diag_embed(pu) - pu[:, :, None] * pi[:, None, :] - pi[:, :, None] * pu[:, None, :]
    idx = torch.arange(n_s)
    h[idx, :, idx, :] += own
    h = h.reshape(n_s * n_a, n_s * n_a)
    return 0.5 * (h + h.T)


def dice_hessian(logits: Tensor, episodes: Episodes, gamma: float) -> Tensor:
    """Hessian of the DiCE surrogate of ``episodes`` in θ (module docstring)."""
    pi = torch.softmax(logits, dim=1)
    n_s, n_a = pi.shape
    n = n_s * n_a
    alive = episodes.alive
    c = dice_coefficients(episodes.rewards, alive, gamma)
    suffix = c.flip(1).cumsum(1).flip(1)
    weight = torch.zeros(n_s, dtype=pi.dtype).index_add_(0, episodes.states[alive], suffix[alive])
    blocks = -(weight[:, None, None] * _softmax_blocks(pi))
    h = torch.block_diag(*blocks)
    for lo in range(0, alive.shape[0], CHUNK):
        live = alive[lo : lo + CHUNK]
        length = int(live.sum(1).max())
        live = live[:, :length]
        s = episodes.states[lo : lo + CHUNK, :length]
        a = episodes.actions[lo : lo + CHUNK, :length]
        g = torch.zeros(*s.shape, n_s, n_a, dtype=pi.dtype)
        rows = torch.nonzero(live, as_tuple=True)
        g[(*rows, s[rows])] = -pi[s[rows]]
        g[(*rows, s[rows], a[rows])] += 1.0
        phi = torch.cumsum(g.reshape(*s.shape, n), dim=1)[rows]
        h = h + phi.T @ (phi * c[lo : lo + CHUNK, :length][rows][:, None])
    return h / alive.shape[0]
