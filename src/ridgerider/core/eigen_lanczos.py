"""The cold phase of :func:`~ridgerider.core.eigensolver.bottom_eigenpairs`.

Lanczos with full reorthogonalisation from one start vector, checked on the tridiagonal matrix
after every product (a Ritz pair's residual is ``β·|s_last|``). When the basis is full the run
thick-restarts into the block phase (:mod:`ridgerider.core.eigen_block`) with the lowest Ritz
vectors, whose images are known exactly. A converged run that is to be verified goes to the
block phase whole (its images follow from the recurrence), where probes look for eigenvalues
it misses (:mod:`ridgerider.core.eigen_probe`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal
from torch import Tensor

from ridgerider.core.eigen_basis import TINY, KrylovBasis, MatVec, random_rows, tensor_like
from ridgerider.core.eigen_block import Outcome, SolverConfig, block_phase

__all__ = ["lanczos"]


@dataclass
class _Run:
    """A Lanczos run: the basis rows ``q``, the tridiagonal ``(alpha, beta)`` and ``β_m``."""

    q: Tensor
    alpha: np.ndarray
    beta: np.ndarray
    cap: int
    m: int = 0
    b: float = 0.0
    """The norm of the next (unnormalised) basis vector."""
    segment: int = 0
    """Where the Krylov space restarted from a fresh random direction (0: never)."""

    @classmethod
    def begin(cls, start: Tensor, cap: int) -> _Run:
        """A run of at most ``cap`` products from ``start``."""
        q = torch.empty(cap + 1, start.numel(), dtype=start.dtype)
        q[0] = start / start.norm()
        return cls(q, np.zeros(cap), np.zeros(cap), cap)


@dataclass
class _Check:
    """The convergence test after a product: the lowest Ritz pairs of the tridiagonal matrix."""

    mu: np.ndarray
    s: np.ndarray
    res: np.ndarray
    kk: int
    done: bool


def lanczos(
    matvec: MatVec,
    start: Tensor,
    cfg: SolverConfig,
    norm: float,
    budget: int,
    generator: torch.Generator | None,
) -> Outcome:
    """Lanczos until the ``k`` lowest Ritz pairs converge, or until the basis is full.

    A full basis is thick-restarted (the ``active`` lowest Ritz vectors with their exact images)
    and the block phase continues from it with the products left. With ``cfg.verify`` a
    converged run is verified by the block phase's probes.
    """
    n = start.numel()
    run = _Run.begin(start, min(cfg.max_basis, n, budget))
    while run.m < run.cap:
        w = _extend(matvec, run)
        check, norm = _check(run, cfg, norm)
        invariant = run.b <= 1e-10 * max(norm, TINY)
        if not check.done and invariant and run.m < min(run.cap, n):
            w = _fresh_direction(run, generator)
        elif check.done and cfg.verify:
            return _verified(matvec, run, w, cfg, norm, budget, generator)
        elif check.done or invariant:
            return _outcome(run, check, norm)
        run.q[run.m] = w / run.b
    out = block_phase(matvec, _thick_restart(run, cfg), cfg, norm, budget - run.m, generator)
    out.matvecs += run.m
    return out


def _extend(matvec: MatVec, run: _Run) -> Tensor:
    """One product and the recurrence: sets ``alpha[m]``, ``beta[m]``; returns the next vector.

    Three-term recurrence, then full reorthogonalisation: one classical Gram–Schmidt pass, and a
    second only when the first removed much (the DGKS criterion). Each pass reads the whole
    basis, so it costs about as much memory traffic as a product.
    """
    q, alpha, beta, m = run.q, run.alpha, run.beta, run.m
    w = matvec(q[m].contiguous()).reshape(q.shape[1]).to(q.dtype)
    alpha[m] = float(q[m] @ w)
    w = w - alpha[m] * q[m] - (beta[m - 1] * q[m - 1] if m else 0.0)
    basis = q[: m + 1]
    before = float(w.norm())
    w = w - (basis @ w) @ basis
    b = float(w.norm())
    if b < 0.7 * before:
        w = w - (basis @ w) @ basis
        b = float(w.norm())
    beta[m] = b
    run.b, run.m = b, m + 1
    return w


def _check(run: _Run, cfg: SolverConfig, norm: float) -> tuple[_Check, float]:
    """Whether the ``k`` lowest Ritz pairs converged; also the updated ``‖A‖``."""
    m, b, limit = run.m, run.b, cfg.tol
    mu, s = _tridiagonal_bottom(run.alpha[:m], run.beta[: m - 1], min(cfg.active, m))
    res = b * np.abs(s[m - 1])
    kk = min(cfg.k, m)
    if not cfg.fixed_norm:
        norm = max(norm, abs(float(mu[0])))
        # The top Ritz value moves slowly; an old (smaller) norm only makes the test stricter.
        if m % 4 == 1 or bool((res[:kk] <= 10 * limit * max(norm, TINY)).all()):
            norm = max(norm, abs(_tridiagonal_top(run.alpha[:m], run.beta[: m - 1])))
    thresh = limit * max(norm, TINY)
    done = kk == cfg.k and bool((res[:kk] <= thresh).all())
    if done and run.segment > 0:
        # After a restart, the fresh segment must show nothing below the k-th value: an
        # invariant Krylov space hides further copies of its eigenvalues.
        seg = run.segment
        mu_s, s_s = _tridiagonal_bottom(run.alpha[seg:m], run.beta[seg : m - 1], 1)
        done = b * abs(float(s_s[-1, 0])) <= thresh and float(mu_s[0]) >= mu[kk - 1] - thresh
    return _Check(mu, s, res, kk, done), norm


def _fresh_direction(run: _Run, generator: torch.Generator | None) -> Tensor:
    """An invariant subspace: go on from a fresh random direction (β = 0 decouples it)."""
    m, q = run.m, run.q
    w = random_rows(q.shape[1], 1, generator, q.dtype)
    for _ in range(2):
        w = w - (q[:m] @ w) @ q[:m]
    run.b, run.beta[m - 1], run.segment = float(w.norm()), 0.0, m
    return w


def _verified(
    matvec: MatVec,
    run: _Run,
    last: Tensor,
    cfg: SolverConfig,
    norm: float,
    budget: int,
    generator: torch.Generator | None,
) -> Outcome:
    """A converged run handed to the block phase, whose probes look for missed eigenvalues.

    The whole Krylov basis goes over (its images follow from the recurrence, no products), so
    the probes are deflated against everything the run resolved.
    """
    alpha, beta = (tensor_like(x[: run.m], run.q) for x in (run.alpha, run.beta))
    basis = KrylovBasis.from_lanczos(run.q, run.m, alpha, beta, last)
    out = block_phase(matvec, basis, cfg, norm, budget - run.m, generator)
    out.matvecs += run.m
    return out


def _outcome(run: _Run, check: _Check, norm: float) -> Outcome:
    """The finished run's Ritz pairs (the ``k`` lowest, then the guards)."""
    q, kk = run.q, check.kk
    y = tensor_like(check.s, q)
    x = y.T @ q[: run.m]
    res = tensor_like(check.res[:kk], q)
    return Outcome(tensor_like(check.mu[:kk], q), x[:kk], res, x[kk:], run.m, norm, check.done)


def _thick_restart(run: _Run, cfg: SolverConfig) -> KrylovBasis:
    """The ``active`` lowest Ritz vectors of a full run with their exact images, as a basis."""
    q, m, b = run.q, run.m, run.b
    mu, s = _tridiagonal_bottom(run.alpha[:m], run.beta[: m - 1], min(cfg.active, m))
    y = tensor_like(s, q)
    mu_t = tensor_like(mu, q)
    x = y.T @ q[:m]
    # A Vᵀs = Vᵀ T s + b q_{m+1} s_last = μ Vᵀs + b s_last q_{m+1}, exactly.
    ax = mu_t[:, None] * x + b * y[m - 1][:, None] * q[m][None, :]
    restart = KrylovBasis(q.shape[1], q.dtype, min(q.shape[1], cfg.max_basis + cfg.block))
    restart.add(x, ax)
    return restart


def _tridiagonal_bottom(a: np.ndarray, e: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` lowest eigenpairs of the symmetric tridiagonal matrix ``(a, e)``."""
    if a.size == 1:
        return a.copy(), np.ones((1, 1))
    return eigh_tridiagonal(a, e, select="i", select_range=(0, count - 1), check_finite=False)


def _tridiagonal_top(a: np.ndarray, e: np.ndarray) -> float:
    """The largest eigenvalue of the symmetric tridiagonal matrix ``(a, e)``."""
    if a.size == 1:
        return float(a[0])
    top = eigh_tridiagonal(
        a,
        e,
        eigvals_only=True,
        select="i",
        select_range=(a.size - 1, a.size - 1),
        check_finite=False,
    )
    return float(top[0])
