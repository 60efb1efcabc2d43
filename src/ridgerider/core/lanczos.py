"""Lanczos with full reorthogonalisation and locking, for the most negative eigenpairs.

Single-vector Lanczos sees one vector per eigenspace, so a repeated eigenvalue appears once per
Krylov space. To recover multiplicities, converged Ritz pairs are *locked* and Lanczos restarts
from a fresh random vector in the orthogonal complement of the locked set; the search ends when
a restart finds nothing below the k-th locked value. This module is the correct reference used
by the engine; the fast block solver for large networks is ``bottom_eigenpairs`` elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ridgerider.core.curvature import canonical_sign

MatVec = Callable[[Tensor], Tensor]
_TINY = 1e-300

__all__ = ["LanczosResult", "lanczos_bottom"]


@dataclass(frozen=True)
class LanczosResult:
    """The ``k`` most negative eigenpairs found by :func:`lanczos_bottom`."""

    values: Tensor
    """Eigenvalues, ascending, shape ``[k]``."""
    vectors: Tensor
    """Orthonormal, canonically signed eigenvectors as columns, shape ``[n, k]``."""
    matvecs: int
    """Number of operator applications used."""
    converged: bool
    """Whether every returned pair met the residual tolerance."""


def _orthogonalise(w: Tensor, basis: Tensor | None) -> Tensor:
    """Remove the components of ``w`` along the columns of ``basis`` (twice, for stability)."""
    if basis is None or basis.shape[1] == 0:
        return w
    for _ in range(2):
        w = w - basis @ (basis.T @ w)
    return w


def _krylov_run(
    matvec: MatVec,
    start: Tensor,
    locked: Tensor | None,
    want: int,
    count: int,
    max_steps: int,
    tol: float,
) -> tuple[Tensor, Tensor, Tensor, float, int]:
    """One Lanczos run on the operator restricted to the complement of ``locked``.

    Returns the ``count`` lowest Ritz values, their Ritz vectors and residual norms, the scale
    the tolerance is relative to (the largest |Ritz value|) and the number of products used.
    The basis lives in one growing buffer of rows, so a reorthogonalisation pass is two
    contiguous matrix-vector products; a second pass runs only when the first removed more than
    ~30 % of the vector's norm ("twice is enough", Daniel–Gragg–Kaufman–Stewart), which in
    Lanczos it almost never does. The Ritz vectors are formed once, at the end, from the
    ``count`` lowest pairs of the tridiagonal matrix.
    """
    q = _orthogonalise(start, locked)
    q = q / q.norm()
    buf = torch.empty(min(max_steps, 32), q.numel(), dtype=q.dtype, device=q.device)
    buf[0] = q
    alphas: list[float] = []
    betas: list[float] = []
    used = 0
    vals = s = resid = None
    scale = _TINY
    for j in range(max_steps):
        w = _next_vector(matvec, buf[: j + 1], locked, alphas, betas)
        used += 1
        beta = float(w.norm())
        vals, s, scale = _tridiagonal_ritz(alphas, betas, count)
        resid = abs(beta) * np.abs(s[-1, :])
        r = min(want, j + 1)
        invariant = beta <= 1e-12 * scale
        if invariant or (j + 1 >= want and bool((resid[:r] <= tol * scale).all())):
            break
        betas.append(beta)
        if j + 1 < max_steps:
            buf = _put_row(buf, j + 1, w / beta, max_steps)
    assert vals is not None and s is not None and resid is not None
    vecs = buf[: s.shape[0]].T @ torch.as_tensor(s, dtype=buf.dtype, device=buf.device)
    values = torch.as_tensor(vals, dtype=buf.dtype, device=buf.device)
    return values, vecs, torch.as_tensor(resid, dtype=buf.dtype), scale, used


def _next_vector(
    matvec: MatVec, rows: Tensor, locked: Tensor | None, alphas: list[float], betas: list[float]
) -> Tensor:
    """One product and the recurrence on basis ``rows``: appends ``α_j``, returns ``β_j q_{j+1}``.

    Three-term recurrence, then reorthogonalisation against the basis (a second pass only when
    the first removed more than ~30 %) and the locked vectors.
    """
    j = rows.shape[0] - 1
    w = matvec(rows[j])
    w = _orthogonalise(w, locked)
    alphas.append(float(rows[j] @ w))
    w = w - alphas[j] * rows[j]
    if j > 0:
        w = w - betas[j - 1] * rows[j - 1]
    before = w.norm()
    w = w - rows.T @ (rows @ w)
    if w.norm() < 0.7 * before:
        w = w - rows.T @ (rows @ w)
    return _orthogonalise(w, locked)


def _tridiagonal_ritz(
    alphas: list[float], betas: list[float], count: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """The ``count`` lowest eigenpairs of the tridiagonal matrix and its largest |eigenvalue|."""
    t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if betas:
        off = torch.tensor(betas, dtype=torch.float64)
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    every, vecs_t = torch.linalg.eigh(t)  # LAPACK's dense solver beats stemr here
    scale = max(float(every.abs().max()), _TINY)
    return every[:count].numpy(), vecs_t[:, :count].numpy(), scale


def _put_row(buf: Tensor, i: int, row: Tensor, max_steps: int) -> Tensor:
    """``buf`` with ``row`` at index ``i``, doubled (up to ``max_steps`` rows) when full."""
    if i == buf.shape[0]:
        size = (min(max_steps, 2 * buf.shape[0]), buf.shape[1])
        grown = torch.empty(size, dtype=buf.dtype, device=buf.device)
        grown[:i] = buf
        buf = grown
    buf[i] = row
    return buf


def lanczos_bottom(
    matvec: MatVec,
    n: int,
    k: int,
    *,
    tol: float = 1e-8,
    max_steps: int | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    max_restarts: int = 64,
) -> LanczosResult:
    """Find the ``k`` smallest (most negative) eigenpairs of a symmetric operator.

    Args:
        matvec: ``v -> A v`` for a vector ``v`` of shape ``[n]``.
        n: dimension of the operator.
        k: number of eigenpairs wanted (``1 <= k <= n``).
        tol: residual tolerance relative to the largest Ritz value magnitude.
        max_steps: Krylov dimension cap per run (default ``n``).
        generator: source of the random start vectors, for reproducibility.
        dtype: floating dtype of the start vectors.
        max_restarts: cap on locking restarts.
    """
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, n={n}], got {k}")
    steps_cap = n if max_steps is None else min(max_steps, n)
    locked_vecs = torch.zeros(n, 0, dtype=dtype)
    locked_vals = torch.zeros(0, dtype=dtype)
    used = 0
    converged = True
    for _ in range(max_restarts):
        room = n - locked_vecs.shape[1]
        if room <= 0:
            break
        start = torch.randn(n, generator=generator, dtype=dtype)
        want = max(1, k - locked_vecs.shape[1])
        vals, vecs, resid, scale, m = _krylov_run(
            matvec, start, locked_vecs, want, k, min(steps_cap, room), tol
        )
        used += m
        new_vals, new_vecs = _lockable(vals, vecs, resid, scale, locked_vals, k, tol)
        if len(new_vals) == 0:
            break  # nothing new: done once k are locked, else stuck
        locked_vals, locked_vecs = _lock(locked_vals, locked_vecs, new_vals, new_vecs, k)
    else:
        converged = False
    converged = converged and len(locked_vals) >= k
    kk = min(k, len(locked_vals))
    return LanczosResult(
        values=locked_vals[:kk],
        vectors=canonical_sign(locked_vecs[:, :kk]),
        matvecs=used,
        converged=converged,
    )


def _lockable(
    vals: Tensor,
    vecs: Tensor,
    resid: Tensor,
    scale: float,
    locked_vals: Tensor,
    k: int,
    tol: float,
) -> tuple[Tensor, Tensor]:
    """The pairs of a run worth locking.

    Only the converged prefix from the bottom counts: Lanczos converges extremes first, and
    skipping an unconverged lower pair would misorder the result. Once ``k`` pairs are locked,
    only those below the ``k``-th locked value are new.
    """
    ref = max(scale, float(locked_vals.abs().max()) if len(locked_vals) else 0.0)
    ok = (resid <= tol * ref).to(torch.int64)
    prefix = int(torch.cumprod(ok, 0).sum())
    new_vals, new_vecs = vals[:prefix], vecs[:, :prefix]
    if len(locked_vals) >= k:
        below = new_vals < float(locked_vals[k - 1]) - tol * scale
        new_vals, new_vecs = new_vals[below], new_vecs[:, below]
    return new_vals, new_vecs


def _lock(
    locked_vals: Tensor, locked_vecs: Tensor, new_vals: Tensor, new_vecs: Tensor, k: int
) -> tuple[Tensor, Tensor]:
    """Add the bottom of the new pairs to the locked set, kept in ascending order.

    Only the bottom: higher converged values may hide missing copies of lower repeated values.
    """
    take = min(len(new_vals), max(1, k - len(locked_vals)))
    new_vecs = _orthogonalise(new_vecs[:, :take], locked_vecs)
    new_vecs = new_vecs / new_vecs.norm(dim=0, keepdim=True)
    locked_vecs = torch.cat([locked_vecs, new_vecs], dim=1)
    locked_vals = torch.cat([locked_vals, new_vals[:take]])
    order = torch.argsort(locked_vals)
    return locked_vals[order], locked_vecs[:, order]
