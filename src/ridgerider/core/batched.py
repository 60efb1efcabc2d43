"""Batched exact Ridge Rider: many branches stepped together.

Exact RR spends its time on one dense Hessian and one ``eigh`` per step. When several branches
are ridden at once (a frontier with many open branches, or replicates), their Hessians can be
built by one vmapped call (``torch.func.vmap(torch.func.hessian(L))``) and decomposed by one
batched ``torch.linalg.eigh``, which keeps a GPU busy and amortises Python overhead on a CPU core.

:func:`batched_spectra` is the batched GetRidges/UpdateRidge primitive; :func:`batched_get_ridges`
and :func:`ride_batched` give, branch by branch, the same results as
:func:`~ridgerider.core.ridge.get_ridges` and :func:`~ridgerider.core.ridge.ride` (same rules:
backtracking, overlap re-identification with the cluster projection, EndRide), up to rounding
in the Hessians. Loss evaluations stay per branch so that every acceptance test compares the
same numbers as the one-branch path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ridgerider.core.curvature import LossFn, canonical_sign, dense_hessian
from ridgerider.core.ridge import RideOutcome, Ridge, get_ridges
from ridgerider.core.settings import RRSettings
from ridgerider.core.update_ridge import HessianFn, continuation

__all__ = [
    "batched_get_ridges",
    "batched_hessians",
    "batched_spectra",
    "can_vectorize",
    "continuation",
    "ride_batched",
]


def batched_hessians(
    loss_fn: LossFn,
    thetas: Tensor,
    hessian_fn: HessianFn | None = None,
    vectorize: bool | None = None,
) -> Tensor:
    """Symmetrised Hessians ``[B, n, n]`` at the rows of ``thetas`` (``[B, n]``).

    One vmapped call when the function can be traced by ``torch.func`` (``hessian_fn`` if
    given, else ``torch.func.hessian(loss_fn)``); otherwise a loop of the one-point function.
    ``vectorize`` skips the probe when the caller already knows (see :func:`can_vectorize`).
    """
    from torch.func import hessian, vmap

    one: HessianFn = hessian_fn if hessian_fn is not None else hessian(loss_fn)
    thetas = thetas.detach()
    if vectorize is None:
        vectorize = can_vectorize(loss_fn, thetas[0], hessian_fn)
    if vectorize:
        h = vmap(one)(thetas)
    else:
        fallback = hessian_fn or (lambda x: dense_hessian(loss_fn, x))
        h = torch.stack([fallback(t) for t in thetas])
    h = h.reshape(thetas.shape[0], thetas.shape[1], thetas.shape[1])
    return 0.5 * (h + h.transpose(1, 2))


def can_vectorize(loss_fn: LossFn, theta: Tensor, hessian_fn: HessianFn | None = None) -> bool:
    """Whether the Hessian function can be vmapped (tried once on a batch of one)."""
    from torch.func import hessian, vmap

    one: HessianFn = hessian_fn if hessian_fn is not None else hessian(loss_fn)
    try:
        vmap(one)(theta.detach()[None])
    except Exception:  # data-dependent control flow, .item(), in-place updates...
        return False
    return True


def batched_spectra(
    loss_fn: LossFn,
    thetas: Tensor,
    hessian_fn: HessianFn | None = None,
    vectorize: bool | None = None,
) -> tuple[Tensor, Tensor]:
    """Ascending eigenvalues ``[B, n]`` and canonically signed eigenvectors ``[B, n, n]``.

    The batched form of :func:`~ridgerider.core.curvature.symmetric_eigh` of each Hessian.
    """
    h = batched_hessians(loss_fn, thetas, hessian_fn, vectorize)
    values, vectors = torch.linalg.eigh(h)
    b, n, k = vectors.shape
    # canonical_sign acts column by column: sign all B·k columns in one call.
    cols = canonical_sign(vectors.permute(1, 0, 2).reshape(n, b * k))
    return values, cols.reshape(n, b, k).permute(1, 0, 2)


def batched_get_ridges(
    loss_fn: LossFn,
    thetas: Tensor,
    settings: RRSettings,
    generators: list[torch.Generator | None] | None = None,
    hessian_fn: HessianFn | None = None,
) -> list[tuple[list[Ridge], Tensor]]:
    """:func:`~ridgerider.core.ridge.get_ridges` at every row of ``thetas``, Hessians batched."""
    hs = batched_hessians(loss_fn, thetas, hessian_fn)
    gens = generators if generators is not None else [None] * thetas.shape[0]
    return [
        get_ridges(loss_fn, t, settings, g, hessian_fn=lambda _x, h=h: h)
        for t, g, h in zip(thetas, gens, hs, strict=True)
    ]


@dataclass
class _Ride:
    """One branch's state inside :func:`ride_batched` (mirrors the locals of ``ride``)."""

    theta: Tensor
    e: Tensor
    lam: float
    loss: float
    losses: list[float]
    alpha: float
    trial: float = 0.0
    failure: str = "no_progress"
    steps: int = 0
    crossings: int = 0
    rank: int | None = None
    reason: str | None = None
    pending: tuple[Tensor, float] | None = field(default=None, repr=False)

    def outcome(self) -> RideOutcome:
        return RideOutcome(
            self.theta,
            self.e,
            self.lam,
            self.losses,
            self.steps,
            self.reason or "max_steps",
            self.crossings,
        )


def ride_batched(
    loss_fn: LossFn,
    thetas: Tensor,
    directions: Tensor,
    eigenvalues: list[float],
    settings: RRSettings,
    max_steps: int | None = None,
    hessian_fn: HessianFn | None = None,
    vectorize: bool | None = None,
) -> list[RideOutcome]:
    """Ride ``B`` ridges in lockstep: :func:`~ridgerider.core.ridge.ride` for each row.

    Every round tries one step size per unfinished ride; the candidates that lower the loss get
    their Hessians and eigendecompositions in one batched call, then each ride accepts, halves
    its step size or ends exactly as the one-branch ride does. Only ``method="exact"`` (and
    ``update="fixed"``, which needs no Hessian) is batched here. ``vectorize``: whether the
    Hessian function can be vmapped (probed once when ``None``).
    """
    _check_batchable(settings)
    cap = settings.max_ride_steps if max_steps is None else min(max_steps, settings.max_ride_steps)
    if vectorize is None:
        vectorize = settings.update != "fixed" and can_vectorize(loss_fn, thetas[0], hessian_fn)
    rides = _start_rides(loss_fn, thetas, directions, eigenvalues, settings, cap)
    while True:
        active = [r for r in rides if r.reason is None]
        if not active:
            break
        need = _try_steps(loss_fn, active, settings, cap)
        if need:
            _update_ridges(loss_fn, need, settings, cap, hessian_fn, vectorize)
    return [r.outcome() for r in rides]


def _check_batchable(settings: RRSettings) -> None:
    """Raise ``ValueError`` unless the rides are exact and backtracking."""
    if settings.method != "exact":
        raise ValueError(f"method must be 'exact' for batched rides, got {settings.method!r}")
    if settings.step_rule != "backtrack":
        raise ValueError(
            f"step_rule must be 'backtrack' for batched rides, got {settings.step_rule!r}"
        )


def _start_rides(
    loss_fn: LossFn,
    thetas: Tensor,
    directions: Tensor,
    eigenvalues: list[float],
    settings: RRSettings,
    cap: int,
) -> list[_Ride]:
    """One ride state per row, at its branch point, trying the full step size first."""
    rides = []
    for theta, d, lam in zip(thetas, directions, eigenvalues, strict=True):
        loss = float(loss_fn(theta))
        r = _Ride(theta.detach().clone(), d / d.norm(), float(lam), loss, [loss], settings.alpha)
        r.trial = settings.alpha
        if cap <= 0:
            r.reason = "max_steps"
        rides.append(r)
    return rides


def _try_steps(loss_fn: LossFn, active: list[_Ride], settings: RRSettings, cap: int) -> list[_Ride]:
    """Try each ride's step size; returns the rides whose candidate needs UpdateRidge.

    A candidate that does not lower the loss halves the step size; with ``update="fixed"`` one
    that does is accepted at once.
    """
    need: list[_Ride] = []
    for r in active:
        cand = r.theta - r.trial * r.e
        cand_loss = float(loss_fn(cand))
        if cand_loss >= r.loss:
            r.failure = "no_progress"
            _reject(r, settings)
        elif settings.update == "fixed":
            _accept(r, cand, cand_loss, r.e, r.lam, r.rank, settings, cap)
        else:
            r.pending = (cand, cand_loss)
            need.append(r)
    return need


def _update_ridges(
    loss_fn: LossFn,
    need: list[_Ride],
    settings: RRSettings,
    cap: int,
    hessian_fn: HessianFn | None,
    vectorize: bool,
) -> None:
    """UpdateRidge at the pending candidates, spectra batched; accept or halve the step size."""
    cands = torch.stack([r.pending[0] for r in need if r.pending is not None])
    values, vectors = batched_spectra(loss_fn, cands, hessian_fn, vectorize)
    for r, val, vec in zip(need, values, vectors, strict=True):
        assert r.pending is not None
        cand, cand_loss = r.pending
        r.pending = None
        e_new, lam_new, overlap, rank = continuation(val, vec, r.e, settings)
        if overlap >= settings.overlap_threshold:
            _accept(r, cand, cand_loss, e_new, lam_new, rank, settings, cap)
        else:
            r.failure = "overlap"
            _reject(r, settings)


def _reject(r: _Ride, settings: RRSettings) -> None:
    r.trial *= 0.5
    if r.trial < settings.alpha_min:
        r.reason = r.failure


def _accept(
    r: _Ride,
    cand: Tensor,
    cand_loss: float,
    e: Tensor,
    lam: float,
    rank: int | None,
    settings: RRSettings,
    cap: int,
) -> None:
    prev_loss = r.loss
    if r.rank is not None and rank is not None and rank != r.rank:
        r.crossings += 1
    r.theta, r.loss, r.e, r.lam, r.rank = cand, cand_loss, e, lam, rank
    r.alpha = r.trial
    r.steps += 1
    r.losses.append(cand_loss)
    fixed = settings.update == "fixed"
    if settings.end_on_convex and not fixed and lam >= -settings.zero_tol:
        r.reason = "convex"
    elif prev_loss - cand_loss <= settings.min_progress * (1.0 + abs(prev_loss)):
        r.reason = "no_progress"
    elif r.steps >= cap:
        r.reason = "max_steps"
    else:
        r.trial = min(settings.alpha, 2.0 * r.alpha)
        r.failure = "no_progress"
