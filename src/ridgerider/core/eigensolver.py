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
    up once (ARPACK has the same limit). Where multiplicities are expected (a symmetric saddle,
    e.g. a maximally invariant one) pass ``block`` ≥ the multiplicity: the cold start is then a
    block Krylov method from ``block`` random vectors. Warm starts resolve multiplicities up to
    the number of columns of ``init``.

Warm start (``init`` given, e.g. the previous step's ``vectors`` and ``guards``)
    Block Krylov in Davidson form. The initial block is ``init``; each iteration does
    Rayleigh–Ritz and extends the basis by the residuals of the *unconverged* wanted Ritz pairs
    only, leaving out residual directions within twice the threshold. Converged pairs are
    locked (never multiplied again; Rayleigh–Ritz keeps refining them for free) and the columns
    past ``k`` (guards) are iterated but never expanded, so an eigenvalue that crosses the
    ``k``-th after a step stays in view. When θ moved little most pairs converge within a few
    iterations.

Stopping rule. A Ritz pair ``(μ, x)`` has converged when ``‖Ax − μx‖ ≤ tol·‖A‖``; ``‖A‖`` is
estimated from below by the largest |Ritz value| seen and the largest ``‖Av‖`` over the basis
(``norm`` overrides the estimate). The solver stops when the ``k`` lowest Ritz pairs converged.
Small operators (``n`` up to ``max(3 (k + guard), 32)``) are solved densely from ``n`` products.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal
from torch import Tensor

from ridgerider.core.curvature import canonical_sign

MatVec = Callable[[Tensor], Tensor]

__all__ = ["EigenResult", "MatVec", "bottom_eigenpairs"]

_TINY = 1e-300
_CHECK_EVERY = 4
"""Single-vector runs past a thick restart check convergence every this many products."""
_EXPAND_FLOOR = 2.0
"""Block phase: residual directions whose singular value is at most this many thresholds are
not expanded yet. Expanding the larger directions shrinks them as well (they share the Krylov
space), and the stopping test still checks every pair. Measured in ``benchmarks/README.md``:
against 1× it saves 0–4 products of a warm start after a 0.1 % step on the digits MLPs."""


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
    """Whether every returned pair met ``‖Ax − λx‖ ≤ tol·‖A‖``."""
    residuals: Tensor
    """Residual norms ``‖Ax − λx‖``, shape ``[k]``."""
    norm_estimate: float
    """The ``‖A‖`` the tolerance was relative to (pass it on as ``norm`` to warm starts)."""
    guards: Tensor
    """The next Ritz vectors above the ``k`` returned, ``[n, g]`` (not necessarily converged):
    append them to the next warm start's ``init``."""


# --------------------------------------------------------------------------------------------
# the basis: orthonormal rows V, their images AV, and the projections VAVᵀ and (AV)(AV)ᵀ


class _Basis:
    """Orthonormal rows ``V`` ``[m, n]``, ``AV``, ``M = V A Vᵀ`` and ``G = (AV)(AV)ᵀ``."""

    def __init__(self, n: int, dtype: torch.dtype, cap: int) -> None:
        self.n, self.dtype, self.m = n, dtype, 0
        self.image_norm = 0.0
        """The largest ``‖Av‖`` over basis vectors seen (a lower bound on ``‖A‖``)."""
        self.v = torch.empty(cap, n, dtype=dtype)
        self.av = torch.empty(cap, n, dtype=dtype)
        self.mm = torch.zeros(cap, cap, dtype=dtype)
        self.g = torch.zeros(cap, cap, dtype=dtype)

    def _reserve(self, extra: int) -> None:
        cap = self.v.shape[0]
        if self.m + extra <= cap:
            return
        new = max(self.m + extra, 2 * cap)
        for name in ("v", "av"):
            old = getattr(self, name)
            grown = torch.empty(new, self.n, dtype=self.dtype)
            grown[: self.m] = old[: self.m]
            setattr(self, name, grown)
        for name in ("mm", "g"):
            old = getattr(self, name)
            grown = torch.zeros(new, new, dtype=self.dtype)
            grown[: self.m, : self.m] = old[: self.m, : self.m]
            setattr(self, name, grown)

    def add(self, w: Tensor, aw: Tensor) -> None:
        """Append orthonormal rows ``w`` (orthogonal to ``V``) with their images ``aw``."""
        b = w.shape[0]
        self._reserve(b)
        m, e = self.m, self.m + b
        self.v[m:e] = w
        self.av[m:e] = aw
        self.image_norm = max(self.image_norm, float(aw.norm(dim=1).max()))
        cross = self.v[:e] @ aw.T
        cross[m:e] = 0.5 * (cross[m:e] + cross[m:e].T)
        self.mm[:e, m:e] = cross
        self.mm[m:e, :e] = cross.T
        gc = self.av[:e] @ aw.T
        self.g[:e, m:e] = gc
        self.g[m:e, :e] = gc.T
        self.m = e

    def ritz(self) -> tuple[Tensor, Tensor]:
        """Ritz values (ascending) and coefficient vectors (columns) of the current basis."""
        mm = self.mm[: self.m, : self.m]
        return torch.linalg.eigh(0.5 * (mm + mm.T))

    def residual_norms(self, y: Tensor, mu: Tensor, threshold: float) -> Tensor:
        """``‖A Vᵀy − μ Vᵀy‖`` per column of ``y``.

        Estimated from the projections (``yᵀGy − μ²``), which loses accuracy below about
        ``1e-7·‖AV‖`` to cancellation; when the threshold comes within reach of that, residuals
        near or below it are recomputed explicitly, so convergence is never declared on
        cancellation noise.
        """
        g = self.g[: self.m, : self.m]
        est = ((y * (g @ y)).sum(dim=0) - mu**2).clamp_min(0.0).sqrt()
        if threshold >= 1e-5 * self.image_norm:
            return est  # the estimate's error (~1e-7·‖AV‖) is far below the threshold
        near = est <= max(10 * threshold, 1e-7 * self.image_norm)
        if bool(near.any()):
            x, ax = self.combine(y[:, near])
            est[near] = (ax - mu[near, None] * x).norm(dim=1)
        return est

    def combine(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """Rows ``yᵀV`` and ``yᵀAV``."""
        return y.T @ self.v[: self.m], y.T @ self.av[: self.m]

    def collapse(self, y: Tensor, mu: Tensor) -> None:
        """Keep only the Ritz vectors ``yᵀV`` (a thick restart; no products needed)."""
        x, ax = self.combine(y)
        g = y.T @ self.g[: self.m, : self.m] @ y
        p = y.shape[1]
        self.v[:p], self.av[:p] = x, ax
        self.mm[:p, :p] = torch.diag(mu)
        self.g[:p, :p] = 0.5 * (g + g.T)
        self.m = p

    def orthonormalise(self, w: Tensor, threshold: float = 0.0, drop: float = 1e-7) -> Tensor:
        """Orthonormal rows spanning the part of the rows of ``w`` outside ``V``.

        Block Gram–Schmidt against ``V`` twice, then SVQB (the small Gram matrix's
        eigenvectors) inside the block twice. Directions with singular value at most
        ``threshold`` are left out, keeping the largest: for a residual block they change no
        residual by more than that and shrink as the larger ones are expanded, so they are not
        worth a product yet (``_EXPAND_FLOOR``). Directions
        below ``drop`` relative to the largest row are numerically inside ``V`` and dropped.
        """
        basis = self.v[: self.m]
        scale = float(w.norm(dim=1).max()) if w.numel() else 0.0
        if scale == 0.0:
            return w[:0]
        for _ in range(2):
            w = w - (w @ basis.T) @ basis
        for rnd in range(2):  # combinations of rows orthogonal to V stay so: no third pass
            gram = w @ w.T
            lam, u = torch.linalg.eigh(0.5 * (gram + gram.T))
            sv = lam.clamp_min(0.0).sqrt()
            if rnd == 0:
                keep = (sv > drop * scale) & (sv > threshold)
                if not bool(keep.any()) and float(sv[-1]) > drop * scale:
                    keep[-1] = True  # the largest direction, even if below the threshold
                if not bool(keep.any()):
                    return w[:0]
                u, sv = u[:, keep], sv[keep]
            w = (u / sv.clamp_min(_TINY)).T @ w
        return w


def _apply(matvec: MatVec, rows: Tensor) -> Tensor:
    """Images of the rows of ``rows`` (``[b, n]``), as rows, through one call of ``matvec``."""
    if rows.shape[0] == 1:
        return matvec(rows[0].contiguous()).reshape(1, -1).to(rows.dtype)
    return matvec(rows.T).T.to(rows.dtype).contiguous()


# --------------------------------------------------------------------------------------------
# block phase: warm starts, block cold starts and the continuation of a thick restart


@dataclass
class _Outcome:
    values: Tensor
    rows: Tensor
    residuals: Tensor
    guard_rows: Tensor
    matvecs: int
    norm: float
    converged: bool


@dataclass(frozen=True)
class _Config:
    k: int
    active: int
    tol: float
    fixed_norm: bool
    block: int
    max_basis: int


def _block_phase(
    matvec: MatVec,
    basis: _Basis,
    cfg: _Config,
    norm: float,
    budget: int,
    generator: torch.Generator | None = None,
) -> _Outcome:
    """Rayleigh–Ritz with expansion by the unconverged wanted residuals (module docstring)."""
    used = 0
    krylov_next: Tensor | None = None  # single-vector mode: the image of the last vector added
    since_check = 0
    while True:
        if krylov_next is not None and since_check < _CHECK_EVERY and basis.m < cfg.max_basis:
            # Between checks a single-vector run is plain Lanczos: extend by A·(last vector).
            w = basis.orthonormalise(krylov_next[None, :])[: max(0, budget - used)]
            if w.shape[0] == 1:
                basis.add(w, _apply(matvec, w))
                used += 1
                since_check += 1
                krylov_next = basis.av[basis.m - 1].clone()
                continue
        since_check = 0
        mu, y = basis.ritz()
        p = min(cfg.active, mu.numel())
        kk = min(cfg.k, p)
        if not cfg.fixed_norm:
            norm = max(norm, float(mu.abs().max()), basis.image_norm)
        thresh = cfg.tol * max(norm, _TINY)
        res = basis.residual_norms(y[:, :p], mu[:p], thresh)
        ok = res <= thresh
        todo = [j for j in range(kk) if not bool(ok[j])][: cfg.block]
        room = min(basis.n - basis.m, budget - used)
        if (kk == cfg.k and not todo) or room <= 0:
            break
        if not todo:  # fewer Ritz pairs than k: grow with the lowest ones' residuals
            todo = list(range(kk))[: cfg.block]
        sel = torch.tensor(todo)
        x, ax = basis.combine(y[:, sel])
        r = ax - mu[sel, None] * x
        if basis.m + len(todo) > cfg.max_basis:
            keep = min(max(p, cfg.k), mu.numel())
            basis.collapse(y[:, :keep], mu[:keep])
        w = basis.orthonormalise(r, _EXPAND_FLOOR * thresh)[:room]
        if w.shape[0] == 0:  # the basis is invariant: go on from a random direction
            fresh = _random(basis.n, 1, generator, basis.dtype)[None]
            w = basis.orthonormalise(fresh)[:room]
            if w.shape[0] == 0:
                break
        basis.add(w, _apply(matvec, w))
        used += w.shape[0]
        krylov_next = basis.av[basis.m - 1].clone() if cfg.block == 1 else None
    mu, y = basis.ritz()
    p = min(cfg.active, mu.numel())
    kk = min(cfg.k, p)
    x, ax = basis.combine(y[:, :p])
    res = (ax - mu[:p, None] * x).norm(dim=1)
    limit = cfg.tol * max(norm, _TINY) * (1 + 1e-6)
    converged = kk == cfg.k and bool((res[:kk] <= limit).all())
    return _Outcome(mu[:kk], x[:kk], res[:kk], x[kk:p], used, norm, converged)


def _from_block(
    matvec: MatVec,
    seed: Tensor,
    cfg: _Config,
    norm: float,
    budget: int,
    generator: torch.Generator | None = None,
) -> _Outcome:
    """Block phase from seed rows: orthonormalise, apply ``A`` once, iterate."""
    n = seed.shape[1]
    cap = min(n, max(cfg.max_basis, seed.shape[0] + cfg.block) + cfg.block)
    basis = _Basis(n, seed.dtype, cap)
    w = basis.orthonormalise(seed)[:budget]
    if w.shape[0] == 0:
        raise ValueError("init has no usable (nonzero) columns")
    basis.add(w, _apply(matvec, w))
    big = _Config(cfg.k, cfg.active, cfg.tol, cfg.fixed_norm, cfg.block, max(cfg.max_basis, cap))
    out = _block_phase(matvec, basis, big, norm, budget - w.shape[0], generator)
    out.matvecs += w.shape[0]
    return out


# --------------------------------------------------------------------------------------------
# cold phase: Lanczos with full reorthogonalisation


def _lanczos(
    matvec: MatVec,
    start: Tensor,
    cfg: _Config,
    norm: float,
    budget: int,
    generator: torch.Generator | None,
) -> tuple[_Outcome | None, _Basis | None, int, float]:
    """Lanczos until the ``k`` lowest Ritz pairs converge, or until the basis is full.

    Returns a finished outcome, or the thick-restart basis (the ``active`` lowest Ritz vectors
    with their exact images) to continue from; plus the products used and ``‖A‖``.
    """
    n, dtype = start.numel(), start.dtype
    cap = min(cfg.max_basis, n, budget)
    q = torch.empty(cap + 1, n, dtype=dtype)
    q[0] = start / start.norm()
    alpha, beta = np.zeros(cap), np.zeros(cap)
    m, b, segment = 0, 0.0, 0
    limit = cfg.tol
    while m < cap:
        w = matvec(q[m].contiguous()).reshape(n).to(dtype)
        alpha[m] = float(q[m] @ w)
        # Three-term recurrence, then full reorthogonalisation: one classical Gram–Schmidt
        # pass, and a second only when the first removed much (the DGKS criterion). Each pass
        # reads the whole basis, so it costs about as much memory traffic as a product.
        w = w - alpha[m] * q[m] - (beta[m - 1] * q[m - 1] if m else 0.0)
        basis = q[: m + 1]
        before = float(w.norm())
        w = w - (basis @ w) @ basis
        b = float(w.norm())
        if b < 0.7 * before:
            w = w - (basis @ w) @ basis
            b = float(w.norm())
        beta[m] = b
        m += 1
        want = min(cfg.active, m)
        mu, s = _tridiagonal_bottom(alpha[:m], beta[: m - 1], want)
        res = b * np.abs(s[m - 1])
        kk = min(cfg.k, m)
        if not cfg.fixed_norm:
            norm = max(norm, abs(float(mu[0])))
            # The top Ritz value moves slowly; an old (smaller) norm only makes the test stricter.
            if m % 4 == 1 or bool((res[:kk] <= 10 * limit * max(norm, _TINY)).all()):
                norm = max(norm, abs(_tridiagonal_top(alpha[:m], beta[: m - 1])))
        thresh = limit * max(norm, _TINY)
        done = kk == cfg.k and bool((res[:kk] <= thresh).all())
        if done and segment > 0:
            # After a restart, the fresh segment must show nothing below the k-th value: an
            # invariant Krylov space hides further copies of its eigenvalues.
            mu_s, s_s = _tridiagonal_bottom(alpha[segment:m], beta[segment : m - 1], 1)
            done = b * abs(float(s_s[-1, 0])) <= thresh and float(mu_s[0]) >= mu[kk - 1] - thresh
        invariant = b <= 1e-10 * max(norm, _TINY)
        if not done and invariant and m < min(cap, n):
            # An invariant subspace: go on from a fresh random direction (β = 0 decouples it).
            w = _random(n, 1, generator, dtype)
            for _ in range(2):
                w = w - (q[:m] @ w) @ q[:m]
            b, beta[m - 1], segment = float(w.norm()), 0.0, m
        elif done or invariant:
            y = _np(s, q)
            x = y.T @ q[:m]
            out = _Outcome(
                _np(mu[:kk], q),
                x[:kk],
                _np(res[:kk], q),
                x[kk:],
                m,
                norm,
                done,
            )
            return out, None, m, norm
        q[m] = w / b
    mu, s = _tridiagonal_bottom(alpha[:m], beta[: m - 1], min(cfg.active, m))
    y = _np(s, q)
    mu_t = _np(mu, q)
    x = y.T @ q[:m]
    # A Vᵀs = Vᵀ T s + b q_{m+1} s_last = μ Vᵀs + b s_last q_{m+1}, exactly.
    ax = mu_t[:, None] * x + b * y[m - 1][:, None] * q[m][None, :]
    restart = _Basis(n, dtype, min(n, cfg.max_basis + cfg.block))
    restart.add(x, ax)
    return None, restart, m, norm


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


def _dense(matvec: MatVec, n: int, k: int, active: int, dtype: torch.dtype) -> _Outcome:
    """Build the matrix from ``n`` products and diagonalise it (tiny operators)."""
    eye = torch.eye(n, dtype=dtype)
    a = _apply(matvec, eye)
    values, vectors = torch.linalg.eigh(0.5 * (a + a.T))
    rows = vectors.T
    res = (rows @ a - values[:, None] * rows).norm(dim=1)
    norm = float(values.abs().max())
    p = min(active, n)
    return _Outcome(values[:k], rows[:k], res[:k], rows[k:p], n, norm, True)


# --------------------------------------------------------------------------------------------
# public entry point


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
    """
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, n={n}], got {k}")
    if tol <= 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if init is not None and (init.dim() != 2 or init.shape[0] != n):
        raise ValueError(f"init must have shape [n={n}, j], got {tuple(init.shape)}")
    dtype = dtype or (init.dtype if init is not None else torch.float64)
    active = min(n, max(k + max(0, guard), init.shape[1] if init is not None else 0))
    budget = max_matvecs if max_matvecs is not None else max(5000, 200 * active)
    est = float(norm) if norm is not None else 0.0
    cold_block = max(1, block or 1)
    basis_cap = min(n, max_basis or max(4 * active, 240))
    if n <= max(3 * active, 32):
        out = _dense(matvec, n, k, active, dtype)
        est = float(norm) if norm is not None else out.norm
        out.converged = bool((out.residuals <= tol * max(est, _TINY) * (1 + 1e-6)).all())
        out.norm = est
    elif init is None and cold_block == 1:
        cfg = _Config(k, active, tol, norm is not None, 1, basis_cap)
        out, restart, used, est = _lanczos(
            matvec, _random(n, 1, generator, dtype), cfg, est, budget, generator
        )
        if out is None:
            assert restart is not None
            out = _block_phase(matvec, restart, cfg, est, budget - used, generator)
            out.matvecs += used
    else:
        if init is None:
            seed = _random(n, cold_block, generator, dtype)
            step = cold_block
        else:
            seed = init.to(dtype).T
            if seed.shape[0] < k:
                seed = torch.cat([seed, _random(n, k - seed.shape[0], generator, dtype)])
            step = block or active
        cfg = _Config(k, active, tol, norm is not None, max(1, step), basis_cap)
        out = _from_block(matvec, seed, cfg, est, budget, generator)
    return EigenResult(
        values=out.values,
        vectors=canonical_sign(out.rows.T.contiguous()),
        matvecs=out.matvecs,
        converged=out.converged,
        residuals=out.residuals,
        norm_estimate=out.norm,
        guards=out.guard_rows.T.contiguous(),
    )


def _random(n: int, b: int, generator: torch.Generator | None, dtype: torch.dtype) -> Tensor:
    """``b`` random rows of length ``n`` (one row is returned as a vector when ``b == 1``).

    Drawn on the CPU (where seeded generators live) and moved to the default device, so that a
    run under ``torch.device("cuda")`` draws the same numbers as on the CPU.
    """
    out = torch.randn(b, n, generator=generator, dtype=dtype, device="cpu")
    out = out.to(torch.get_default_device())
    return out[0] if b == 1 else out


def _np(a: np.ndarray, like: Tensor) -> Tensor:
    """A NumPy array as a tensor with ``like``'s dtype and device."""
    return torch.from_numpy(a).to(dtype=like.dtype, device=like.device)
