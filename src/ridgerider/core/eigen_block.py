"""The block phase of :func:`~ridgerider.core.eigensolver.bottom_eigenpairs`.

Rayleigh–Ritz on a :class:`~ridgerider.core.eigen_basis.KrylovBasis`, extended by the residuals
of the unconverged wanted Ritz pairs: warm starts, block cold starts and the continuation of a
thick-restarted Lanczos run (see the solver's module docstring).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ridgerider.core.eigen_basis import TINY, KrylovBasis, MatVec, apply_rows, random_rows

__all__ = ["CHECK_EVERY", "EXPAND_FLOOR", "Outcome", "SolverConfig", "block_phase", "from_block"]

CHECK_EVERY = 4
"""Single-vector runs past a thick restart check convergence every this many products."""
EXPAND_FLOOR = 2.0
"""Block phase: residual directions whose singular value is at most this many thresholds are
not expanded yet. Expanding the larger directions shrinks them as well (they share the Krylov
space), and the stopping test still checks every pair. Measured in ``benchmarks/README.md``:
against 1× it saves 0–4 products of a warm start after a 0.1 % step on the digits MLPs."""


@dataclass
class Outcome:
    """What a solver phase found, as rows (the public result holds columns)."""

    values: Tensor
    rows: Tensor
    residuals: Tensor
    guard_rows: Tensor
    matvecs: int
    norm: float
    converged: bool


@dataclass(frozen=True)
class SolverConfig:
    """The solver's fixed choices: wanted pairs, active set, tolerance, block and basis size."""

    k: int
    active: int
    tol: float
    fixed_norm: bool
    block: int
    max_basis: int


def block_phase(
    matvec: MatVec,
    basis: KrylovBasis,
    cfg: SolverConfig,
    norm: float,
    budget: int,
    generator: torch.Generator | None = None,
) -> Outcome:
    """Rayleigh–Ritz with expansion by the unconverged wanted residuals (module docstring).

    With ``block == 1`` the run is plain Lanczos between checks: after each expansion it extends
    the basis by the image of the last vector added, checking every :data:`CHECK_EVERY` products.
    """
    used = 0
    single = False  # single-vector mode: the last vector added has been expanded from
    since_check = 0
    while True:
        between_checks = single and since_check < CHECK_EVERY and basis.m < cfg.max_basis
        if between_checks and _extend_by_last_image(matvec, basis, max(0, budget - used)):
            used += 1
            since_check += 1
            continue
        since_check = 0
        room = min(basis.n - basis.m, budget - used)
        r, norm, thresh = _residual_rows(basis, cfg, norm, room)
        w = None if r is None else _new_rows(basis, r, thresh, room, generator)
        if w is None:
            break
        basis.add(w, apply_rows(matvec, w))
        used += w.shape[0]
        single = cfg.block == 1
    return _final_outcome(basis, cfg, norm, used)


def _extend_by_last_image(matvec: MatVec, basis: KrylovBasis, room: int) -> bool:
    """One Lanczos product: extend by ``A·(last vector)``; ``False`` when it adds nothing."""
    w = basis.orthonormalise(basis.av[basis.m - 1].clone()[None, :])[:room]
    if w.shape[0] != 1:
        return False
    basis.add(w, apply_rows(matvec, w))
    return True


def _residual_rows(
    basis: KrylovBasis, cfg: SolverConfig, norm: float, room: int
) -> tuple[Tensor | None, float, float]:
    """Rayleigh–Ritz check: the residual rows to expand by, the updated ``‖A‖``, the threshold.

    The rows are ``None`` when the ``k`` lowest pairs converged or there is no room left. When
    the residuals would overflow ``max_basis`` the basis is thick-restarted first (the residuals
    are taken before, so they do not change).
    """
    mu, y = basis.ritz()
    p = min(cfg.active, mu.numel())
    kk = min(cfg.k, p)
    if not cfg.fixed_norm:
        norm = max(norm, float(mu.abs().max()), basis.image_norm)
    thresh = cfg.tol * max(norm, TINY)
    res = basis.residual_norms(y[:, :p], mu[:p], thresh)
    ok = res <= thresh
    todo = [j for j in range(kk) if not bool(ok[j])][: cfg.block]
    if (kk == cfg.k and not todo) or room <= 0:
        return None, norm, thresh
    if not todo:  # fewer Ritz pairs than k: grow with the lowest ones' residuals
        todo = list(range(kk))[: cfg.block]
    sel = torch.tensor(todo)
    x, ax = basis.combine(y[:, sel])
    r = ax - mu[sel, None] * x
    if basis.m + len(todo) > cfg.max_basis:
        keep = min(max(p, cfg.k), mu.numel())
        basis.collapse(y[:, :keep], mu[:keep])
    return r, norm, thresh


def _new_rows(
    basis: KrylovBasis,
    r: Tensor,
    thresh: float,
    room: int,
    generator: torch.Generator | None,
) -> Tensor | None:
    """The orthonormal rows to add for residuals ``r``; ``None`` when nothing can be added.

    When the residuals lie inside the basis (it is invariant) the run goes on from a random
    direction.
    """
    w = basis.orthonormalise(r, EXPAND_FLOOR * thresh)[:room]
    if w.shape[0] == 0:
        fresh = random_rows(basis.n, 1, generator, basis.dtype)[None]
        w = basis.orthonormalise(fresh)[:room]
        if w.shape[0] == 0:
            return None
    return w


def _final_outcome(basis: KrylovBasis, cfg: SolverConfig, norm: float, used: int) -> Outcome:
    """The ``k`` lowest Ritz pairs with explicit residuals, and the guards above them."""
    mu, y = basis.ritz()
    p = min(cfg.active, mu.numel())
    kk = min(cfg.k, p)
    x, ax = basis.combine(y[:, :p])
    res = (ax - mu[:p, None] * x).norm(dim=1)
    limit = cfg.tol * max(norm, TINY) * (1 + 1e-6)
    converged = kk == cfg.k and bool((res[:kk] <= limit).all())
    return Outcome(mu[:kk], x[:kk], res[:kk], x[kk:p], used, norm, converged)


def from_block(
    matvec: MatVec,
    seed: Tensor,
    cfg: SolverConfig,
    norm: float,
    budget: int,
    generator: torch.Generator | None = None,
) -> Outcome:
    """Block phase from seed rows: orthonormalise, apply ``A`` once, iterate."""
    n = seed.shape[1]
    cap = min(n, max(cfg.max_basis, seed.shape[0] + cfg.block) + cfg.block)
    basis = KrylovBasis(n, seed.dtype, cap)
    w = basis.orthonormalise(seed)[:budget]
    if w.shape[0] == 0:
        raise ValueError("init has no usable (nonzero) columns")
    basis.add(w, apply_rows(matvec, w))
    big = SolverConfig(
        cfg.k, cfg.active, cfg.tol, cfg.fixed_norm, cfg.block, max(cfg.max_basis, cap)
    )
    out = block_phase(matvec, basis, big, norm, budget - w.shape[0], generator)
    out.matvecs += w.shape[0]
    return out
