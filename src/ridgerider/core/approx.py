"""Approximate Ridge Rider: GetRidges and UpdateRidge from Hessian-vector products only.

Pure functions over a loss ``θ ↦ L(θ)``; nothing here forms a Hessian.

GetRidges (:func:`approx_get_ridges`)
    The ``N`` most negative eigenpairs by :func:`~ridgerider.core.eigensolver.bottom_eigenpairs`
    on products from :func:`~ridgerider.core.hvp.make_hvp`; warm-startable from a previous
    spectrum. A cold solve is verified, so at a symmetric saddle the ``N`` pairs hold every copy
    of a repeated eigenvalue, as exact GetRidges does. With one ridge per group of repeated
    eigenvalues the solve grows until each group's first index is that of the whole spectrum.

UpdateRidge (:func:`approx_update_ridge`), after a step ``θ' → θ``, two methods:

``rayleigh_ritz`` (default)
    The followed eigenvector is refreshed inside a small *tracked block* (the ridge and its
    spectral neighbours, 3–5 vectors): Rayleigh–Ritz on the block at θ, then expansion by the
    followed pair's residual until ``‖He − λe‖ ≤ tol·‖H‖``. The continuation of the ridge is the
    Ritz vector of largest overlap with the previous direction (matched by overlap, never by
    rank: after small steps neighbouring eigenvalues swap order), and the rest of the block is
    re-matched to the old block so the neighbours stay in view. A change of the followed
    vector's rank inside the block is recorded as a crossing.
``paper``
    The paper's UpdateRidge: gradient steps on ``ℓ(e, λ) = ‖(1/λ)·H(θ)e/‖e‖ − e/‖e‖‖²``, started
    from the previous ``e`` and the first-order estimate ``λ ≈ λ' + e'ᵀ(H(θ) − H(θ'))e'``. Each
    step needs two products (``Hu`` and ``Hr``). The paper publishes no step sizes for this
    inner loop; by default they are set from the curvature scale so plain gradient descent is
    stable (``lr_e = ½·λ²/(‖H‖ + |λ|)²``, ``lr_λ = ¼·λ²``). Convergence is slow inside tight
    clusters (the rate is ``1 − 2·lr_e·(λ_j/λ − 1)²`` for a neighbour ``λ_j``), which is why
    ``rayleigh_ritz`` is the default.

Both return the new direction (sign-aligned with the previous one), its eigenvalue, the
overlap ``|⟨e, e'⟩|`` and the products used; the state to carry to the next step is a
:class:`RidgeTrack`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Literal

import torch
from torch import Tensor

from ridgerider.core.curvature import LossFn
from ridgerider.core.eigen_groups import groups_fixed
from ridgerider.core.eigensolver import EigenResult, bottom_eigenpairs
from ridgerider.core.hvp import AnalyticHVP, HVPOperator, make_hvp

__all__ = [
    "UPDATE_METHODS",
    "RidgeTrack",
    "RidgeUpdate",
    "approx_get_ridges",
    "approx_update_ridge",
    "start_track",
    "track_from_direction",
]

UPDATE_METHODS = ("rayleigh_ritz", "paper")


def approx_get_ridges(
    loss_fn: LossFn,
    theta: Tensor,
    n_ridges: int,
    *,
    tol: float = 1e-4,
    guard: int = 3,
    block: int | None = None,
    init: Tensor | None = None,
    generator: torch.Generator | None = None,
    hvp_method: str = "auto",
    max_hvps: int | None = None,
    analytic: AnalyticHVP | None = None,
    group_tol: float | None = None,
    zero_tol: float = 0.0,
) -> EigenResult:
    """The ``n_ridges`` most negative Hessian eigenpairs at ``θ``, from products only.

    Args:
        loss_fn: ``θ ↦ L(θ)``.
        theta: the branch point.
        n_ridges: how many eigenpairs (``N``); clipped to ``n``.
        tol: residual tolerance relative to ``‖H‖`` (see :func:`bottom_eigenpairs`).
        guard: extra Ritz pairs kept active (returned as ``guards``, useful for tracking).
        block: cold start block size; pass the expected multiplicity at a symmetric saddle.
        init: warm start (e.g. the spectrum at the end of the parent's ride).
        generator: random start vectors (seed it per branch for replayable runs).
        hvp_method: see :func:`~ridgerider.core.hvp.make_hvp`.
        max_hvps: product budget.
        analytic: the problem's hand-written HVP (``Problem.exact_hvp``), preferred by ``auto``.
        group_tol: for one ridge per group of repeated eigenvalues (``RRSettings.repeat_tol``):
            the solve is repeated with twice as many pairs, warm-started, until the first index
            of each of the ``n_ridges`` lowest groups below ``-zero_tol`` is fixed (every copy of
            the groups below it found, :func:`~ridgerider.core.eigen_groups.groups_fixed`), so
            eigen-indices are those of the whole spectrum, as in exact GetRidges. Groups are
            relative to the returned ``norm_estimate``.
        zero_tol: with ``group_tol``, eigenvalues above ``-zero_tol`` form no group.

    The caller keeps the eigenvalues below ``-zero_tol`` and takes both signs of each vector.
    ``matvecs`` counts the products of every solve.
    """
    op = make_hvp(loss_fn, theta, hvp_method, analytic=analytic)
    n = theta.numel()
    solve = partial(
        bottom_eigenpairs,
        op,
        n,
        tol=tol,
        generator=generator,
        guard=guard,
        block=block,
        max_matvecs=max_hvps,
        dtype=theta.dtype,
    )
    k = min(n_ridges, n)
    result = solve(k, init=init)
    used = result.matvecs
    while (
        group_tol is not None
        and k < n
        and not _groups_fixed(result, n_ridges, group_tol, tol, zero_tol)
    ):
        k = min(n, 2 * k)
        warm = torch.cat([result.vectors, result.guards], dim=1)
        result = solve(k, init=warm, norm=result.norm_estimate, verify=True)
        used += result.matvecs
    return replace(result, matvecs=used)


def _groups_fixed(
    result: EigenResult, count: int, repeat_tol: float, tol: float, zero_tol: float
) -> bool:
    """Whether ``result`` fixes the first indices of the ``count`` lowest negative groups."""
    norm = result.norm_estimate
    return groups_fixed(result.values, count, repeat_tol, norm, zero_tol, tol * norm)


@dataclass(frozen=True)
class RidgeTrack:
    """What UpdateRidge carries from one step to the next."""

    direction: Tensor
    """The followed unit eigenvector ``e'`` (with the sign being followed), ``[n]``."""
    eigenvalue: float
    """The eigenvalue estimate ``λ'`` carried to the next step: the Ritz value for
    ``rayleigh_ritz``; for ``paper`` the λ its gradient steps learned, which can drift from the
    Rayleigh quotient (the paper warm-starts the next λ from it)."""
    block: Tensor
    """Orthonormal tracked block ``[n, b]`` containing (approximately) ``e'`` and neighbours."""
    rank: int
    """Rank of ``e'`` among the block's Ritz values (ascending): a change is a crossing."""
    rayleigh: float
    """``e'ᵀH(θ')e'`` (equals ``λ'`` for an exact eigenvector), for the paper's λ estimate."""
    norm: float
    """Estimate of ``‖H‖`` the tolerance is relative to."""


def start_track(spectrum: EigenResult, index: int, sign: int = 1, width: int = 5) -> RidgeTrack:
    """The track of ridge ``(index, sign)`` of a GetRidges spectrum.

    The block holds the ridge and up to ``width − 1`` spectral neighbours (from ``vectors``
    then ``guards``), centred on ``index`` where possible.
    """
    pool = torch.cat([spectrum.vectors, spectrum.guards], dim=1)
    count = pool.shape[1]
    if not 0 <= index < spectrum.vectors.shape[1]:
        raise ValueError(f"index must be in [0, {spectrum.vectors.shape[1]}), got {index}")
    width = max(1, min(width, count))
    lo = max(0, min(index - (width - 1) // 2, count - width))
    block = pool[:, lo : lo + width]
    lam = float(spectrum.values[index])
    e = sign * spectrum.vectors[:, index]
    return RidgeTrack(e, lam, block, index - lo, lam, spectrum.norm_estimate)


def track_from_direction(
    direction: Tensor, eigenvalue: float, scale: float | None = None
) -> RidgeTrack:
    """A track that knows only the ridge (e.g. a branch read back from storage).

    The block starts as the ridge alone and grows to ``width`` neighbours over the first
    update. ``scale`` is the ``‖H‖`` the update tolerance is relative to; without it ``|λ|``
    is used (stricter, since ``|λ| ≤ ‖H‖``) and the estimate grows as products are seen.
    """
    e = direction / direction.norm()
    lam = float(eigenvalue)
    return RidgeTrack(e, lam, e[:, None], 0, lam, abs(lam) if scale is None else float(scale))


@dataclass(frozen=True)
class RidgeUpdate:
    """The result of one UpdateRidge."""

    direction: Tensor
    """New unit direction, sign-aligned so that ``⟨e, e'⟩ ≥ 0``."""
    eigenvalue: float
    """Its eigenvalue (Rayleigh quotient)."""
    overlap: float
    """``|⟨e, e'⟩|`` with the previous direction (EndRide compares it with a threshold)."""
    hvps: int
    """Hessian-vector products used."""
    residual: float
    """``‖He − λe‖``."""
    converged: bool
    """Whether the residual met ``tol·‖H‖`` (``paper``: after its fixed number of steps)."""
    crossing: bool
    """Whether the followed vector changed rank inside the tracked block (``rayleigh_ritz``)."""
    track: RidgeTrack
    """State for the next step."""


def approx_update_ridge(
    loss_fn: LossFn,
    theta: Tensor,
    track: RidgeTrack,
    *,
    method: Literal["rayleigh_ritz", "paper"] = "rayleigh_ritz",
    tol: float = 1e-4,
    max_hvps: int = 200,
    hvp: HVPOperator | None = None,
    hvp_method: str = "auto",
    width: int = 5,
    steps: int = 20,
    lr_e: float | None = None,
    lr_lambda: float | None = None,
    analytic: AnalyticHVP | None = None,
) -> RidgeUpdate:
    """UpdateRidge at the new point ``θ`` (module docstring).

    Args:
        loss_fn: ``θ ↦ L(θ)``.
        theta: the point after the step.
        track: the state from :func:`start_track` or the previous update's ``track``.
        method: ``rayleigh_ritz`` or ``paper``.
        tol: ``rayleigh_ritz``: stop when ``‖He − λe‖ ≤ tol·‖H‖``.
        max_hvps: ``rayleigh_ritz``: product budget.
        hvp: an operator already built at ``θ`` (its graph is reused), else one is made.
        hvp_method: method for the operator made here.
        width: ``rayleigh_ritz``: size the tracked block grows to (the ridge and neighbours).
        steps: ``paper``: gradient steps.
        lr_e: ``paper``: step size for ``e`` (default: scale-free, see the module docstring).
        lr_lambda: ``paper``: step size for ``λ`` (default ``¼·λ²``).
        analytic: the problem's hand-written HVP, for the operator made here.
    """
    op = hvp if hvp is not None else make_hvp(loss_fn, theta, hvp_method, analytic=analytic)
    start = op.matvecs
    if method == "rayleigh_ritz":
        out = _rayleigh_ritz(op, track, tol, max_hvps, width)
    elif method == "paper":
        out = _paper(op, track, tol, steps, lr_e, lr_lambda)
    else:
        raise ValueError(f"method must be one of {UPDATE_METHODS}, got {method!r}")
    return replace(out, hvps=op.matvecs - start)


def _aligned(e: Tensor, prev: Tensor) -> Tensor:
    """``e`` normalised, with the sign that makes ``⟨e, prev⟩ ≥ 0``."""
    e = e / e.norm()
    return -e if float(e @ prev) < 0 else e


def _rayleigh_ritz(
    op: HVPOperator, track: RidgeTrack, tol: float, budget: int, width: int
) -> RidgeUpdate:
    prev = track.direction
    start = op.matvecs
    u, sv, _ = torch.linalg.svd(torch.cat([prev[:, None], track.block], dim=1), full_matrices=False)
    v = u[:, sv > 1e-8 * sv[0]]  # an orthonormal basis of the span (the ridge is usually in it)
    b = track.block.shape[1]
    av = op(v)
    norm = max(track.norm, float(av.norm(dim=0).max()))
    thresh = tol * norm
    while True:
        m = v.T @ av
        mu, y = torch.linalg.eigh(0.5 * (m + m.T))
        x = v @ y
        j = int((x.T @ prev).abs().argmax())
        r = av @ y[:, j] - mu[j] * x[:, j]
        res = float(r.norm())
        if res <= thresh or op.matvecs - start >= budget or v.shape[1] >= v.shape[0]:
            break
        for _ in range(2):
            r = r - v @ (v.T @ r)
        nrm = r.norm()
        if float(nrm) <= 1e-12 * norm:
            break
        w = r / nrm
        v = torch.cat([v, w[:, None]], dim=1)
        av = torch.cat([av, op(w)[:, None]], dim=1)
    e = _aligned(x[:, j], prev)
    chosen = _new_block(track.block, x, mu, j, max(b, width))
    rank = int((chosen < j).sum())
    lam = float(mu[j])
    new_track = RidgeTrack(e, lam, x[:, chosen], rank, lam, norm)
    return RidgeUpdate(
        direction=e,
        eigenvalue=lam,
        overlap=abs(float(e @ prev)),
        hvps=0,
        residual=res,
        converged=res <= thresh,
        crossing=len(chosen) == b and rank != track.rank,
        track=new_track,
    )


def _new_block(old: Tensor, x: Tensor, mu: Tensor, j: int, width: int) -> Tensor:
    """Indices (ascending) of the Ritz vectors forming the next tracked block.

    The ridge ``j`` first, then the Ritz vectors closest to the old block's span (so that the
    same neighbours stay tracked), then, while the block is narrower than ``width``, the Ritz
    vectors nearest in eigenvalue to the ridge's.
    """
    count = min(width, x.shape[1])
    closeness = (old.T @ x).norm(dim=0)
    closeness[j] = float("inf")
    picked = torch.topk(closeness, min(old.shape[1], count)).indices.tolist()
    for i in torch.argsort((mu - mu[j]).abs()).tolist():
        if len(picked) >= count:
            break
        if i not in picked:
            picked.append(i)
    return torch.sort(torch.tensor(picked)).values


def _paper(
    op: HVPOperator,
    track: RidgeTrack,
    tol: float,
    steps: int,
    lr_e: float | None,
    lr_lambda: float | None,
) -> RidgeUpdate:
    prev = track.direction
    e = prev.clone()
    hu = op(e)
    rq = float(e @ hu)
    # First-order warm start: λ ≈ λ' + e'ᵀ(H(θ) − H(θ'))e'.
    lam = track.eigenvalue + rq - track.rayleigh
    if lam == 0.0:
        lam = rq if rq != 0.0 else -1e-12
    norm = max(track.norm, float(hu.norm()))
    for _ in range(steps):
        nrm = float(e.norm())
        u = e / nrm
        r = hu / lam - u
        hr = op(r)
        br = hr / lam - r
        grad_e = (2.0 / nrm) * (br - (u @ br) * u)
        grad_lam = float(-(2.0 / lam**2) * (r @ hu))
        step_e = lr_e if lr_e is not None else 0.5 * lam**2 / (norm + abs(lam)) ** 2
        step_lam = lr_lambda if lr_lambda is not None else 0.25 * lam**2
        e = e - step_e * grad_e
        lam = lam - step_lam * grad_lam
        hu = op(e / e.norm())
    u = _aligned(e, prev)
    hu = hu if float(e @ prev) >= 0 else -hu
    rq = float(u @ hu)
    res = float((hu - rq * u).norm())
    block = torch.cat([u[:, None], track.block], dim=1)
    block, _ = torch.linalg.qr(block)
    block = block[:, : track.block.shape[1]]
    # Carry the learned λ, not the Rayleigh quotient: the next warm start is λ + Δ(eᵀHe), as
    # in the paper. (Restarting from the Rayleigh quotient drives λ towards 0 as a long ride
    # flattens the curvature along e, and the 1/λ in ℓ then blows the updates up.)
    new_track = RidgeTrack(u, lam, block, track.rank, rq, norm)
    return RidgeUpdate(
        direction=u,
        eigenvalue=rq,
        overlap=abs(float(u @ prev)),
        hvps=0,
        residual=res,
        converged=res <= tol * norm,
        crossing=False,
        track=new_track,
    )
