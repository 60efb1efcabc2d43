"""Hessian-vector products at a fixed θ, by the fastest method for the case.

:func:`make_hvp` returns an :class:`HVPOperator`: a callable ``v ↦ H(θ) v`` for ``v`` of shape
``[n]`` or ``[n, b]`` that counts the products it computes (a block of ``b`` counts ``b``).

Methods (all exact up to rounding; tests compare each with the dense Hessian):

``cached``
    Double backward through one first-order graph built when the operator is made (the graph of
    ``∇L(θ)`` with ``create_graph=True``) and kept for every product at this θ. One product costs
    one backward pass through the gradient's graph: on CPU 1.2–1.4 gradients for the paper's
    784-128-128-10 (its matrix-product FLOP floor is 1.21; the matrix products alone measure
    1.20, the rest is the double backward's elementwise work, which weighs more the faster the
    machine's matrix products) and 1.3–1.9 for the 10k network of ``benchmarks/curvature.py``.
    A network dominated by a hidden-to-hidden layer needs six matrix products per such layer
    against three for the gradient: FLOP floor ~1.85, measured 1.6–1.9 on 64-320-240-10. Blocks
    loop over their columns.
``batched``
    Like ``cached``, but a block ``[n, b]`` goes through one vmapped double backward
    (``is_grads_batched``), so matrix products replace ``b`` matrix-vector passes.
``rebuild``
    Rebuilds the first-order graph for every call (what :func:`~ridgerider.core.curvature.hvp`
    does): about 2 gradients per product; the baseline for one-off products.
``forward_over_reverse``
    ``torch.func.jvp`` of ``torch.func.grad`` (vmapped for blocks). Needs a functional loss (no
    in-place updates of captured tensors). About 4 gradients on CPU; it can win on GPU.
``analytic``
    A hand-written product the problem supplies (``Problem.exact_hvp``, passed as
    ``analytic=``): for the MLP classifiers Pearlmutter's R-op, ~1.1 gradients a product on
    the paper's network. ``auto`` takes it whenever it is given.
``auto``
    ``analytic`` when given, else ``cached`` on CPU (measured on MLPs: a loop of double
    backward passes beats the vmapped block, 1.3–1.9 against 1.6–2.7 gradients per vector in
    the latest run) and ``forward_over_reverse`` on CUDA
    when ``torch.func`` can trace the loss (else ``batched``). The CUDA choice follows the
    issue's measurements and is not re-measured here; ``benchmarks/curvature.py`` prints the
    ratios for the machine at hand.

The operator also exposes the loss and gradient at θ, which the cached graph gives for free.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

LossFn = Callable[[Tensor], Tensor]
HVPMethod = Literal["auto", "analytic", "cached", "batched", "rebuild", "forward_over_reverse"]
MatVec = Callable[[Tensor], Tensor]
AnalyticHVP = Callable[[Tensor], MatVec | None]
"""``θ ↦ (v ↦ H(θ) v)`` written by hand (``Problem.exact_hvp``), or ``None`` where there is none."""

__all__ = ["HVP_METHODS", "AnalyticHVP", "HVPMethod", "HVPOperator", "make_hvp"]

HVP_METHODS: tuple[str, ...] = ("cached", "batched", "rebuild", "forward_over_reverse")


class HVPOperator:
    """``v ↦ H(θ) v`` at a fixed θ; call it with ``[n]`` or ``[n, b]`` tensors.

    Attributes:
        method: the method in use (never ``"auto"``).
        n: dimension of θ.
        matvecs: products computed so far (a block of ``b`` counts ``b``).
    """

    def __init__(
        self, loss_fn: LossFn, theta: Tensor, method: str, analytic: MatVec | None = None
    ) -> None:
        if method not in (*HVP_METHODS, "analytic"):
            raise ValueError(
                f"method must be one of {(*HVP_METHODS, 'analytic', 'auto')}, got {method!r}"
            )
        if method == "analytic" and analytic is None:
            raise ValueError("method 'analytic' needs the problem's exact_hvp (analytic=)")
        self._analytic = analytic
        self.method = method
        self.loss_fn = loss_fn
        self.theta = theta.detach().clone()
        self.n = theta.numel()
        self.matvecs = 0
        self._x: Tensor | None = None
        self._g: Tensor | None = None
        self._loss: Tensor | None = None
        self._grad: Tensor | None = None
        if method in ("cached", "batched"):
            self._x = self.theta.clone().requires_grad_(True)
            self._loss = loss_fn(self._x)
            (self._g,) = torch.autograd.grad(self._loss, self._x, create_graph=True)
            self._grad = self._g.detach()
        elif method == "forward_over_reverse":
            from torch.func import grad, jvp, vmap

            grad_fn = grad(loss_fn)

            def one(v: Tensor) -> Tensor:
                return jvp(grad_fn, (self.theta,), (v,))[1]

            self._fwd_one = one
            self._fwd_block = vmap(one, in_dims=1, out_dims=1)

    @property
    def loss(self) -> float:
        """``L(θ)``."""
        if self._loss is None:
            with torch.no_grad():
                self._loss = self.loss_fn(self.theta)
        return float(self._loss.detach())

    @property
    def grad(self) -> Tensor:
        """``∇L(θ)`` (detached)."""
        if self._grad is None:
            x = self.theta.clone().requires_grad_(True)
            value = self.loss_fn(x)
            (g,) = torch.autograd.grad(value, x)
            self._loss, self._grad = value.detach(), g.detach()
        return self._grad

    def __call__(self, v: Tensor) -> Tensor:
        """``H(θ) v`` for ``v`` of shape ``[n]`` or ``[n, b]`` (same shape back)."""
        if v.dim() not in (1, 2) or v.shape[0] != self.n:
            raise ValueError(f"expected shape [{self.n}] or [{self.n}, b], got {tuple(v.shape)}")
        v = v.to(dtype=self.theta.dtype, device=self.theta.device)
        self.matvecs += 1 if v.dim() == 1 else v.shape[1]
        if self.method == "forward_over_reverse":
            out = self._fwd_one(v) if v.dim() == 1 else self._fwd_block(v)
            return out.detach()
        if self._analytic is not None:
            return self._analytic(v)
        if self.method == "rebuild":
            return self._rebuild(v)
        return self._double_backward(v)

    def _double_backward(self, v: Tensor) -> Tensor:
        assert self._g is not None and self._x is not None
        if v.dim() == 1:
            (hv,) = torch.autograd.grad(self._g, self._x, v, retain_graph=True)
            return hv.detach()
        if self.method == "batched" and v.shape[1] > 1:
            (hv,) = torch.autograd.grad(
                self._g, self._x, v.T.contiguous(), retain_graph=True, is_grads_batched=True
            )
            return hv.detach().T.contiguous()
        cols = [
            torch.autograd.grad(self._g, self._x, v[:, j].contiguous(), retain_graph=True)[0]
            for j in range(v.shape[1])
        ]
        return torch.stack(cols, dim=1).detach()

    def _rebuild(self, v: Tensor) -> Tensor:
        x = self.theta.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(self.loss_fn(x), x, create_graph=True)
        if v.dim() == 1:
            (hv,) = torch.autograd.grad(g, x, v)
            return hv.detach()
        (hv,) = torch.autograd.grad(g, x, v.T.contiguous(), is_grads_batched=True)
        return hv.detach().T.contiguous()


def _functional(loss_fn: LossFn, theta: Tensor) -> bool:
    """Whether ``torch.func`` can differentiate ``loss_fn`` (tried on one product)."""
    from torch.func import grad, jvp

    try:
        jvp(grad(loss_fn), (theta,), (torch.zeros_like(theta),))
    except Exception:  # any tracing failure means "use autograd instead"
        return False
    return True


def make_hvp(
    loss_fn: LossFn,
    theta: Tensor,
    method: HVPMethod | str = "auto",
    *,
    analytic: AnalyticHVP | None = None,
) -> HVPOperator:
    """Hessian-vector product operator of ``loss_fn`` at ``theta``.

    Args:
        loss_fn: ``θ ↦ L(θ)``, a differentiable scalar.
        theta: the point, a flat tensor of shape ``[n]`` (detached internally).
        method: one of :data:`HVP_METHODS`, ``"analytic"`` or ``"auto"`` (module docstring).
        analytic: the problem's hand-written product (``Problem.exact_hvp``), if any.

    The cached methods build the first-order graph here, once; make a new operator when θ
    changes. The operator holds that graph in memory until it is dropped.
    """
    exact = analytic(theta) if analytic is not None and method in ("auto", "analytic") else None
    if exact is not None:
        return HVPOperator(loss_fn, theta, "analytic", exact)
    if method == "auto":
        method = "cached"
        if theta.device.type == "cuda":
            functional = _functional(loss_fn, theta.detach())
            method = "forward_over_reverse" if functional else "batched"
    return HVPOperator(loss_fn, theta, method)
