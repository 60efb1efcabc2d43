"""The block phase of :func:`~ridgerider.core.eigensolver.bottom_eigenpairs`.

Rayleigh–Ritz on a :class:`~ridgerider.core.eigen_basis.KrylovBasis`, extended by the residuals
of the unconverged wanted Ritz pairs: warm starts, block cold starts and the continuation of a
thick-restarted Lanczos run (see the solver's module docstring).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from ridgerider.core.eigen_basis import TINY, KrylovBasis, MatVec, apply_rows, random_rows
from ridgerider.core.eigen_probe import probe

__all__ = [
    "CHECK_EVERY",
    "EXPAND_FLOOR",
    "PROBE_GROWTH",
    "Outcome",
    "SolverConfig",
    "block_phase",
    "from_block",
]

CHECK_EVERY = 4
"""Single-vector runs past a thick restart check convergence every this many products."""
EXPAND_FLOOR = 2.0
"""Block phase: residual directions whose singular value is at most this many thresholds are
not expanded yet. Expanding the larger directions shrinks them as well (they share the Krylov
space), and the stopping test still checks every pair. Measured in ``benchmarks/README.md``:
against 1× it saves 0–4 products of a warm start after a 0.1 % step on the digits MLPs."""
PROBE_GROWTH = 1.5
"""Once a probe found a missed eigenvalue, the basis may grow to this many times ``max_basis``
before a thick restart."""


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
    verify: bool = False
    """Probe for eigenvalues the basis misses (repeated ones) before declaring convergence
    (:mod:`~ridgerider.core.eigen_probe`)."""


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
    With ``verify``, converged pairs are probed for eigenvalues the basis misses
    (:func:`_probe_for_missed`) before the run stops.
    """
    loop = _Loop(cfg, verified=not cfg.verify)
    while True:
        if _between_checks(matvec, basis, loop, budget):
            continue
        room = min(basis.n - basis.m, budget - loop.used)
        r, norm, thresh = _residual_rows(basis, loop.cfg, norm, room)
        if r is None and not loop.verified and room > 0:
            if _probe_for_missed(matvec, basis, loop, thresh, budget, generator):
                continue
            break
        w = None if r is None else _new_rows(basis, r, thresh, room, generator)
        if w is None:
            break
        basis.add(w, apply_rows(matvec, w))
        loop.used += w.shape[0]
        loop.single = cfg.block == 1
    return _final_outcome(basis, loop.cfg, norm, loop.used, loop.verified)


@dataclass
class _Loop:
    """The block phase's bookkeeping between iterations."""

    cfg: SolverConfig
    verified: bool
    """Whether a probe found nothing missing (always, when not verifying)."""
    used: int = 0
    single: bool = False
    """Single-vector mode: the last vector added has been expanded from."""
    since_check: int = 0
    check_every: int = CHECK_EVERY


def _between_checks(matvec: MatVec, basis: KrylovBasis, loop: _Loop, budget: int) -> bool:
    """In single-vector mode, one Lanczos product without a check.

    ``False`` when it is time to check (or the product would add nothing).
    """
    wait = loop.single and loop.since_check < loop.check_every
    room = max(0, budget - loop.used)
    if wait and basis.m < loop.cfg.max_basis and basis.extend_by_last_image(matvec, room):
        loop.used += 1
        loop.since_check += 1
        return True
    loop.since_check = 0
    return False


def _probe_for_missed(
    matvec: MatVec,
    basis: KrylovBasis,
    loop: _Loop,
    thresh: float,
    budget: int,
    generator: torch.Generator | None,
) -> bool:
    """The ``k`` lowest pairs converged: probe for eigenvalues below them that the basis misses.

    ``False`` when the budget ran out. Otherwise the loop goes on: after a probe that found
    nothing, Rayleigh–Ritz over the larger basis may have remixed a cluster of Ritz pairs, so
    their residuals are checked again. After a probe that found something, the loop converges
    it and probes again, checking after every product (each copy costs a few products more
    when checked less often) and letting the basis grow to :data:`PROBE_GROWTH` × ``max_basis``
    before a thick restart (a restart drops the spectrum the next probes are deflated against).
    """
    found = probe(matvec, basis, loop.cfg.k, thresh, budget - loop.used, generator)
    loop.used += found.used
    loop.verified = found.kind == "clear"
    loop.single = False
    if found.kind != "found":
        return loop.verified
    loop.check_every = 0
    grown = int(PROBE_GROWTH * loop.cfg.max_basis)
    loop.cfg = replace(loop.cfg, max_basis=max(loop.cfg.max_basis, grown))
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


def _final_outcome(
    basis: KrylovBasis, cfg: SolverConfig, norm: float, used: int, verified: bool
) -> Outcome:
    """The ``k`` lowest Ritz pairs with explicit residuals, and the guards above them.

    Converged means every residual met the tolerance and, where asked, a probe found nothing
    missing below them.
    """
    mu, y = basis.ritz()
    p = min(cfg.active, mu.numel())
    kk = min(cfg.k, p)
    x, ax = basis.combine(y[:, :p])
    res = (ax - mu[:p, None] * x).norm(dim=1)
    limit = cfg.tol * max(norm, TINY) * (1 + 1e-6)
    converged = verified and kk == cfg.k and bool((res[:kk] <= limit).all())
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
    big = replace(cfg, max_basis=max(cfg.max_basis, cap))
    out = block_phase(matvec, basis, big, norm, budget - w.shape[0], generator)
    out.matvecs += w.shape[0]
    return out
