"""Curvature primitives: gradient, Hessian-vector products, dense Hessian and symmetric eigh.

Every function takes a loss as a callable ``theta -> scalar tensor`` and a flat parameter vector,
so that the same code serves every problem. ``hvp`` accepts a single vector ``[n]`` or a block
``[n, b]`` and uses double backward through one first-order graph for the whole block.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

LossFn = Callable[[Tensor], Tensor]

__all__ = [
    "LossFn",
    "canonical_sign",
    "dense_hessian",
    "gradient",
    "hvp",
    "symmetric_eigh",
    "value_and_gradient",
]


def gradient(loss_fn: LossFn, theta: Tensor) -> Tensor:
    """Return ``∇L(θ)`` as a detached tensor shaped like ``theta``."""
    return value_and_gradient(loss_fn, theta)[1]


def value_and_gradient(loss_fn: LossFn, theta: Tensor) -> tuple[Tensor, Tensor]:
    """``L(θ)`` and ``∇L(θ)``, both detached, from one forward and one backward pass."""
    x = theta.detach().requires_grad_(True)
    value = loss_fn(x)
    (g,) = torch.autograd.grad(value, x)
    return value.detach(), g.detach()


def hvp(loss_fn: LossFn, theta: Tensor, v: Tensor) -> Tensor:
    """Hessian-vector product ``H(θ) v`` for ``v`` of shape ``[n]`` or ``[n, b]``.

    The first-order graph is built once; a block of ``b`` vectors reuses it through ``b`` double
    backward passes (``is_grads_batched`` keeps them in one call).
    """
    x = theta.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(loss_fn(x), x, create_graph=True)
    if v.dim() == 1:
        (hv,) = torch.autograd.grad(g, x, grad_outputs=v.to(g.dtype))
        return hv.detach()
    (hv,) = torch.autograd.grad(g, x, grad_outputs=v.T.to(g.dtype), is_grads_batched=True)
    return hv.detach().T.contiguous()


def dense_hessian(loss_fn: LossFn, theta: Tensor) -> Tensor:
    """Return the dense, symmetrised Hessian ``∇²L(θ)`` of shape ``[n, n]``."""
    h = torch.autograd.functional.hessian(loss_fn, theta.detach(), vectorize=True)
    h = h.reshape(theta.numel(), theta.numel())
    return 0.5 * (h + h.T)


def canonical_sign(vectors: Tensor) -> Tensor:
    """Flip each column so that its entry of largest magnitude is positive.

    Ties are broken by the lowest index (``argmax`` is deterministic), so the same eigenvector
    gets the same sign in every run; a fingerprint's sign is relative to this choice.
    """
    if vectors.dim() == 1:
        return canonical_sign(vectors[:, None])[:, 0]
    # Round magnitudes so that entries equal up to floating-point noise tie deterministically.
    mags = vectors.abs()
    scale = mags.amax(dim=0, keepdim=True).clamp_min(torch.finfo(vectors.dtype).tiny)
    rounded = torch.round(mags / scale * 1e8)
    idx = rounded.argmax(dim=0)
    signs = torch.sign(vectors[idx, torch.arange(vectors.shape[1])])
    signs[signs == 0] = 1
    return vectors * signs


def symmetric_eigh(h: Tensor, *, signed: bool = True) -> tuple[Tensor, Tensor]:
    """Eigen-decompose a symmetric matrix: ascending values, canonically signed vectors.

    ``signed=False`` leaves the vectors' signs as LAPACK gives them, for callers whose result
    does not depend on them (UpdateRidge: ``update_ridge.continuation``); the sign rule costs
    as much as a small Hessian.
    """
    values, vectors = torch.linalg.eigh(0.5 * (h + h.T))
    return values, canonical_sign(vectors) if signed else vectors
