"""The most negative eigenpairs of a symmetric operator given only products: cold and warm.

:func:`bottom_eigenpairs` is a Rayleigh–Ritz solver on a growing orthonormal basis ``V`` whose
image ``AV`` is stored, so every Ritz pair's residual is known without extra products.

Cold start (no ``init``, ``block = 1``)
    Lanczos with full reorthogonalisation from one random vector. Its Krylov space is the best
    space one product at a time can build, so it needs fewer products than ARPACK's implicitly
    restarted Lanczos (``ncv = 2k + 1``, which throws part of its space away at each restart).
    Convergence is checked on the tridiagonal matrix after every product (the residual of a Ritz
    pair is ``β·|s_last|``). When the basis reaches ``max_basis`` the run thick-restarts: it keeps
    the lowest Ritz vectors, whose images are known exactly, and goes on in the block phase with
    one vector per iteration, which extends the same Krylov space.

    A single start vector sees one vector per eigenspace: an exactly repeated eigenvalue shows
    up once (ARPACK has the same limit), and every residual test still passes. So a converged
    cold run is *verified* (``verify``, on by default for cold starts): probes from fresh random
    vectors, deflated against the whole basis, look for eigenvalues below the ``k``-th that it
    misses (:mod:`~ridgerider.core.eigen_probe`). Each probe finds one missing copy (which is
    then converged and the next probe started) or rules one out, with probability
    ``1 − MISS_PROBABILITY``, from a bound on its start vector's spectral mass below the
    ``k``-th value. A probe that finds nothing costs ~15–25 products; each missing copy ~20
    (``benchmarks/README.md``). ``block`` ≥ the multiplicity (known in advance) makes the cold
    start a block Krylov method from ``block`` random vectors, which finds the copies directly.

Warm start (``init`` given, e.g. the previous step's ``vectors`` and ``guards``)
    Block Krylov in Davidson form. The initial block is ``init``; each iteration does
    Rayleigh–Ritz and extends the basis by the residuals of the *unconverged* wanted Ritz pairs
    only, leaving out residual directions within twice the threshold. Converged pairs are
    locked (never multiplied again; Rayleigh–Ritz keeps refining them for free) and the columns
    past ``k`` (guards) are iterated but never expanded, so an eigenvalue that crosses the
    ``k``-th after a step stays in view. When θ moved little most pairs converge within a few
    iterations. Warm starts are not verified by default: the block of ``init`` resolves
    multiplicities up to its width (pass ``verify=True`` to probe as well).

Stopping rule. A Ritz pair ``(μ, x)`` has converged when ``‖Ax − μx‖ ≤ tol·‖A‖``; ``‖A‖`` is
estimated from below by the largest |Ritz value| seen and the largest ``‖Av‖`` over the basis
(``norm`` overrides the estimate). The solver stops when the ``k`` lowest Ritz pairs converged
and, when verifying, a probe found nothing missing below them; ``converged`` reports both.
Small operators (``n`` up to ``max(3 (k + guard), 32)``) are solved densely from ``n`` products.

The basis lives in :mod:`~ridgerider.core.eigen_basis`, the cold phase in
:mod:`~ridgerider.core.eigen_lanczos`, the block phase in :mod:`~ridgerider.core.eigen_block`
and the probes in :mod:`~ridgerider.core.eigen_probe`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from ridgerider.core.curvature import canonical_sign
from ridgerider.core.eigen_basis import TINY, MatVec, apply_rows, random_rows
from ridgerider.core.eigen_block import Outcome, SolverConfig, from_block
from ridgerider.core.eigen_lanczos import lanczos

__all__ = ["EigenResult", "MatVec", "bottom_eigenpairs"]


@dataclass(frozen=True)
class EigenResult:
    """The ``k`` most negative eigenpairs found by :func:`bottom_eigenpairs`."""

    values: Tensor
    """Eigenvalues, ascending, shape ``[k]``."""
    vectors: Tensor
    """Orthonormal eigenvectors as columns (canonically signed), shape ``[n, k]``."""
    matvecs: int
    """Operator products used (a block of ``b`` vectors counts ``b``)."""
    converged: bool
    """Whether every returned pair met ``‖Ax − λx‖ ≤ tol·‖A‖`` and, when verified, no
    eigenvalue below them was found missing: the ``k`` lowest to tolerance."""
    residuals: Tensor
    """Residual norms ``‖Ax − λx‖``, shape ``[k]``."""
    norm_estimate: float
    """The ``‖A‖`` the tolerance was relative to (pass it on as ``norm`` to warm starts)."""
    guards: Tensor
    """The next Ritz vectors above the ``k`` returned, ``[n, g]`` (not necessarily converged):
    append them to the next warm start's ``init``."""


def bottom_eigenpairs(
    matvec: MatVec,
    n: int,
    k: int,
    *,
    tol: float = 1e-4,
    init: Tensor | None = None,
    generator: torch.Generator | None = None,
    guard: int = 3,
    block: int | None = None,
    max_basis: int | None = None,
    max_matvecs: int | None = None,
    norm: float | None = None,
    dtype: torch.dtype | None = None,
    verify: bool | None = None,
) -> EigenResult:
    """The ``k`` smallest (most negative) eigenpairs of a symmetric operator.

    Args:
        matvec: ``v ↦ A v`` for ``v`` of shape ``[n]`` or ``[n, b]`` (same shape back).
        n: dimension of the operator.
        k: number of eigenpairs wanted (``1 <= k <= n``).
        tol: residual tolerance relative to ``‖A‖`` (module docstring).
        init: warm start ``[n, j]``, e.g. the previous result's ``vectors`` followed by its
            ``guards``; columns past ``k`` act as guards. ``j < k`` is topped up randomly.
        generator: source of random start vectors, for reproducibility.
        guard: Ritz pairs above the ``k``-th kept in the active set (returned as ``guards``).
        block: cold start: number of random start vectors (1: Lanczos; more finds repeated
            eigenvalues up to that multiplicity); warm start: most residuals added per
            iteration (default: every unconverged wanted pair).
        max_basis: basis size that triggers a thick restart (default ``max(4 (k + guard), 240)``).
        max_matvecs: product budget (default ``max(5000, 200 (k + guard))``); ``converged``
            tells whether it sufficed.
        norm: a known ``‖A‖`` instead of the running estimate.
        dtype: working dtype (default: ``init``'s, else float64).
        verify: before declaring convergence, probe with fresh start vectors for eigenvalues
            below the ``k``-th that the basis misses, such as further copies of a repeated
            eigenvalue (module docstring); default: on for cold starts, off for warm ones.
    """
    _check_arguments(n, k, tol, init)
    dtype = dtype or (init.dtype if init is not None else torch.float64)
    active = min(n, max(k + max(0, guard), init.shape[1] if init is not None else 0))
    if n <= max(3 * active, 32):
        out = _dense(matvec, n, k, active, dtype, tol, norm)
    else:
        budget = max_matvecs if max_matvecs is not None else max(5000, 200 * active)
        basis_cap = min(n, max_basis or max(4 * active, 240))
        check = init is None if verify is None else verify
        cfg = SolverConfig(k, active, tol, norm is not None, 1, basis_cap, check)
        est = float(norm) if norm is not None else 0.0
        out = _iterate(matvec, n, cfg, est, budget, init, block, generator, dtype)
    return EigenResult(
        values=out.values,
        vectors=canonical_sign(out.rows.T.contiguous()),
        matvecs=out.matvecs,
        converged=out.converged,
        residuals=out.residuals,
        norm_estimate=out.norm,
        guards=out.guard_rows.T.contiguous(),
    )


def _check_arguments(n: int, k: int, tol: float, init: Tensor | None) -> None:
    """Raise ``ValueError`` for a ``k``, ``tol`` or ``init`` the solver cannot take."""
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, n={n}], got {k}")
    if tol <= 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if init is not None and (init.dim() != 2 or init.shape[0] != n):
        raise ValueError(f"init must have shape [n={n}, j], got {tuple(init.shape)}")


def _dense(
    matvec: MatVec,
    n: int,
    k: int,
    active: int,
    dtype: torch.dtype,
    tol: float,
    norm: float | None,
) -> Outcome:
    """Build the matrix from ``n`` products and diagonalise it (tiny operators)."""
    eye = torch.eye(n, dtype=dtype)
    a = apply_rows(matvec, eye)
    values, vectors = torch.linalg.eigh(0.5 * (a + a.T))
    rows = vectors.T
    res = (rows @ a - values[:, None] * rows).norm(dim=1)
    est = float(norm) if norm is not None else float(values.abs().max())
    converged = bool((res[:k] <= tol * max(est, TINY) * (1 + 1e-6)).all())
    p = min(active, n)
    return Outcome(values[:k], rows[:k], res[:k], rows[k:p], n, est, converged)


def _iterate(
    matvec: MatVec,
    n: int,
    cfg: SolverConfig,
    norm: float,
    budget: int,
    init: Tensor | None,
    block: int | None,
    generator: torch.Generator | None,
    dtype: torch.dtype,
) -> Outcome:
    """Lanczos for a single-vector cold start; the block phase from seed rows otherwise."""
    if init is None and max(1, block or 1) == 1:
        start = random_rows(n, 1, generator, dtype)
        return lanczos(matvec, start, cfg, norm, budget, generator)
    seed, step = _seed_rows(n, cfg, init, block, generator, dtype)
    return from_block(matvec, seed, replace(cfg, block=max(1, step)), norm, budget, generator)


def _seed_rows(
    n: int,
    cfg: SolverConfig,
    init: Tensor | None,
    block: int | None,
    generator: torch.Generator | None,
    dtype: torch.dtype,
) -> tuple[Tensor, int]:
    """The block phase's start rows and block size.

    A block cold start draws ``block`` random rows; a warm start takes the columns of ``init``,
    topped up randomly to ``k``, and adds up to ``block`` (default: every active) residuals
    per iteration.
    """
    if init is None:
        cold_block = max(1, block or 1)
        return random_rows(n, cold_block, generator, dtype), cold_block
    seed = init.to(dtype).T
    if seed.shape[0] < cfg.k:
        seed = torch.cat([seed, random_rows(n, cfg.k - seed.shape[0], generator, dtype)])
    return seed, block or cfg.active
