"""Maximally Invariant Saddle (MIS) search.

The MIS is ``argmin ‖∇L(θ)‖`` subject to invariance under the problem's symmetries (paper §3).
We minimise ``‖∇L(θ)‖² − β·I(θ)`` (``I``: the problem's invariance term, policy entropy for RL and
games) with L-BFGS and a strong-Wolfe line search, which is second-order capable: plain gradient
descent on this objective stalls far from a saddle on the tree problem. The search starts at the
problem's invariant start (usually θ = 0), so every symmetry of the start is preserved by the
optimiser's updates up to floating-point noise. Problems with a closed-form MIS (the lever game)
supply it directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ridgerider.core.curvature import LossFn, dense_hessian, gradient
from ridgerider.core.hvp import AnalyticHVP, make_hvp
from ridgerider.core.lanczos import lanczos_bottom
from ridgerider.core.problem import Problem
from ridgerider.core.settings import MISSettings

__all__ = ["DENSE_LIMIT", "MISResult", "find_mis", "lowest_spectrum"]

DENSE_LIMIT = 2000
"""Above this many parameters spectra are computed by Lanczos instead of a dense eigh."""


@dataclass(frozen=True)
class MISResult:
    """The saddle the search starts from, and how good a saddle it is."""

    theta: Tensor
    loss: float
    grad_norm: float
    negative_eigenvalues: int
    spectrum: list[float]
    """The lowest eigenvalues of the Hessian at the MIS (ascending, at most 64)."""
    method: str
    """``analytic`` or ``lbfgs``."""
    iterations: int


def lowest_spectrum(
    loss_fn: LossFn,
    theta: Tensor,
    k: int = 64,
    generator: torch.Generator | None = None,
    analytic: AnalyticHVP | None = None,
    hessian: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """The ``k`` lowest Hessian eigenvalues at ``θ`` (dense eigh when small, else Lanczos).

    ``analytic``: the problem's hand-written HVP (``Problem.exact_hvp``), used when given;
    ``hessian``: its dense Hessian (``Problem.hessian``, a closed form where it has one), else
    autograd's. Autograd's vectorized Hessian imports sympy through ``torch.autograd`` on its
    first call (0.5 s of a command whose rides never need it).
    """
    n = theta.numel()
    if n <= DENSE_LIMIT:
        h = dense_hessian(loss_fn, theta) if hessian is None else hessian(theta.detach())
        return torch.linalg.eigvalsh(0.5 * (h + h.T))[:k]
    op = make_hvp(loss_fn, theta, analytic=analytic)  # built once for every product at θ
    res = lanczos_bottom(op, n, min(k, n), tol=1e-6, generator=generator)
    return res.values


def _lbfgs_mis(
    problem: Problem, beta: float, settings: MISSettings, start: Tensor
) -> tuple[Tensor, int]:
    x = start.detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [x],
        lr=1.0,
        max_iter=settings.max_iter,
        tolerance_grad=settings.tol,
        tolerance_change=settings.tol * 1e-3,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        opt.zero_grad()
        (g,) = torch.autograd.grad(problem.loss(x), x, create_graph=True)
        obj = g.pow(2).sum()
        if beta:
            inv = problem.invariance(x)
            if inv is not None:
                obj = obj - beta * inv
        obj.backward()
        return obj

    opt.step(closure)
    iterations = int(opt.state[opt._params[0]].get("n_iter", 0))
    return x.detach(), iterations


def find_mis(
    problem: Problem,
    settings: MISSettings | None = None,
    generator: torch.Generator | None = None,
    zero_tol: float = 1e-6,
) -> MISResult:
    """Find the MIS of ``problem`` and report its loss, ‖∇L‖ and negative-curvature count.

    With ``settings.perturbation > 0`` a seeded Gaussian perturbation is added after the search
    (independent replicates differ this way). Eigenvalues below ``-zero_tol`` count as negative.
    """
    settings = settings or MISSettings()
    beta = problem.mis_beta if settings.beta is None else settings.beta
    analytic = problem.analytic_mis() if settings.use_analytic else None
    if analytic is not None:
        theta, method, iterations = analytic.detach().clone(), "analytic", 0
    else:
        theta, iterations = _lbfgs_mis(problem, beta, settings, problem.mis_start())
        method = "lbfgs"
    if settings.perturbation > 0:
        noise = torch.randn(theta.numel(), generator=generator, dtype=theta.dtype)
        theta = theta + settings.perturbation * noise
    spectrum = lowest_spectrum(
        problem.loss,
        theta,
        generator=generator,
        analytic=problem.exact_hvp,
        hessian=problem.hessian,
    )
    return MISResult(
        theta=theta,
        loss=float(problem.loss(theta)),
        grad_norm=float(gradient(problem.loss, theta).norm()),
        negative_eigenvalues=int((spectrum < -zero_tol).sum()),
        spectrum=spectrum.tolist(),
        method=method,
        iterations=iterations,
    )
