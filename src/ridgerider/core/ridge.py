"""Exact Ridge Rider: GetRidges, UpdateRidge, the backtracking ride and EndRide (Algorithm 1).

Conventions. A ridge is a unit eigenvector ``e`` of ``H = ∇²L`` with eigenvalue ``λ < 0``; the
ride steps ``θ ← θ − α·e``. From a saddle both ``+e`` and ``−e`` descend, so GetRidges returns
both signs, relative to the canonical sign of :func:`~ridgerider.core.curvature.canonical_sign`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ridgerider.core.approx import (
    RidgeTrack,
    approx_get_ridges,
    approx_update_ridge,
    track_from_direction,
)
from ridgerider.core.branch import Choice
from ridgerider.core.curvature import (
    LossFn,
    canonical_sign,
    dense_hessian,
    gradient,
    hvp,
    symmetric_eigh,
    value_and_gradient,
)
from ridgerider.core.hvp import AnalyticHVP
from ridgerider.core.settings import RRSettings

HessianFn = Callable[[Tensor], Tensor]
OnStep = Callable[[int, float], None]
"""Live progress of a ride: called with the steps taken so far and the current loss."""

__all__ = [
    "HessianFn",
    "OnStep",
    "RideOutcome",
    "Ridge",
    "get_ridges",
    "negative_spectrum",
    "polish",
    "ride",
]


@dataclass(frozen=True)
class Ridge:
    """One branching choice at a point: the direction to follow and its eigenvalue."""

    choice: Choice
    direction: Tensor
    eigenvalue: float


@dataclass
class RideOutcome:
    """What following one ridge did."""

    theta: Tensor
    direction: Tensor
    eigenvalue: float
    losses: list[float]
    steps: int
    end_reason: str
    crossings: int


def negative_spectrum(values: Tensor, zero_tol: float) -> Tensor:
    """Indices of eigenvalues below ``-zero_tol`` (``values`` ascending)."""
    return torch.nonzero(values < -zero_tol).flatten()


def _group_starts(values: Tensor, idx: Tensor, repeat_tol: float) -> list[int]:
    """First index of each group of (relatively) equal eigenvalues among ``idx``."""
    scale = float(values.abs().max()) if values.numel() else 1.0
    starts: list[int] = []
    last: float | None = None
    for i in idx.tolist():
        v = float(values[i])
        if last is None or abs(v - last) > repeat_tol * max(scale, 1e-300):
            starts.append(i)
        last = v
    return starts


def get_ridges(
    loss_fn: LossFn,
    theta: Tensor,
    settings: RRSettings,
    generator: torch.Generator | None = None,
    hessian_fn: HessianFn | None = None,
    hvp_fn: AnalyticHVP | None = None,
) -> tuple[list[Ridge], Tensor]:
    """GetRidges at ``θ``: the ``N`` most negative eigenpairs, both signs.

    Returns the ridges in exploration order (eigen-index ascending, ``+`` before ``−``) and the
    full ascending spectrum. With ``ridge_rule="random_ascent"`` (the paper's ablation) the
    directions are ``N`` random unit vectors oriented so that ``−α·u`` descends.
    ``hessian_fn`` replaces the autograd Hessian (problems with a closed form pass theirs);
    ``hvp_fn`` gives approximate RR a hand-written HVP (``Problem.exact_hvp``).
    """
    if settings.method == "approx":
        spectrum = approx_get_ridges(
            loss_fn,
            theta,
            settings.n_ridges,
            tol=settings.approx_tol,
            generator=generator,
            analytic=hvp_fn,
        )
        values, vectors = spectrum.values, canonical_sign(spectrum.vectors)
        h = None
    else:
        h = hessian_fn(theta) if hessian_fn is not None else dense_hessian(loss_fn, theta)
        values, vectors = symmetric_eigh(h)
    idx = negative_spectrum(values, settings.zero_tol)
    if settings.ridge_rule == "random_ascent":
        if idx.numel() == 0:
            return [], values
        g = gradient(loss_fn, theta)
        ridges = []
        for i in range(settings.n_ridges):
            u = torch.randn(theta.numel(), generator=generator, dtype=theta.dtype, device="cpu")
            u = u.to(theta.device)
            u = u / u.norm()
            if float(u @ g) < 0:
                u = -u
            curv = float(u @ h @ u) if h is not None else float(u @ hvp(loss_fn, theta, u))
            ridges.append(Ridge((i, 1), u, curv))
        return ridges, values
    chosen = (
        _group_starts(values, idx, settings.repeat_tol) if settings.one_per_group else idx.tolist()
    )
    slopes = None
    if settings.signs == "descent":
        slopes = vectors.T @ gradient(loss_fn, theta)
    ridges = []
    for i in chosen[: settings.n_ridges]:
        e = vectors[:, i]
        for sign in (1, -1):
            # The step is θ − α·sign·e, whose first-order change is −α·sign·⟨∇L, e⟩.
            if slopes is not None and sign * float(slopes[i]) < -settings.grad_tol:
                continue
            ridges.append(Ridge((i, sign), sign * e, float(values[i])))
    return ridges, values


def _update_exact(
    hessian_fn: HessianFn, theta: Tensor, e_prev: Tensor, settings: RRSettings
) -> tuple[Tensor, float, float, int]:
    """Exact UpdateRidge: the eigenvector of largest |overlap| with ``e_prev``, sign-aligned.

    Near-degenerate eigenvalues make single eigenvectors ill-defined: after a step out of a
    symmetric point, a repeated eigenvalue splits and its eigenvectors rotate by O(1) however
    small the step, so a single-vector overlap never reaches the threshold. The continuation of
    the ridge is then the projection of ``e_prev`` onto the eigenvectors whose eigenvalues lie
    within ``cluster_tol`` (relative to the spectral radius) of the best match, taken in order
    of overlap until the threshold is met; its overlap is the projection's norm and its
    eigenvalue the Rayleigh quotient. Without a cluster this is the paper's rule exactly.

    Returns the new direction, its eigenvalue, the overlap and the spectral rank of the best
    match.
    """
    values, vectors = symmetric_eigh(hessian_fn(theta))
    return continuation(values, vectors, e_prev, settings)


def continuation(
    values: Tensor, vectors: Tensor, e_prev: Tensor, settings: RRSettings
) -> tuple[Tensor, float, float, int]:
    """Exact UpdateRidge from a spectrum (see :func:`_update_exact`), shared with batched RR.

    Returns the direction, eigenvalue, overlap and the spectral rank of the best match.
    """
    overlaps = vectors.T @ e_prev
    order = torch.argsort(overlaps.abs(), descending=True).tolist()
    i = order[0]
    tol = settings.cluster_tol * max(float(values.abs().max()), 1e-300)
    members = [i]
    mass = float(overlaps[i]) ** 2
    target = settings.overlap_threshold**2
    for j in order[1:]:
        if mass >= target or float(overlaps[j]) ** 2 < 1e-12:
            break
        if abs(float(values[j] - values[i])) <= tol:
            members.append(j)
            mass += float(overlaps[j]) ** 2
    if len(members) == 1:
        e = vectors[:, i] * (1.0 if float(overlaps[i]) >= 0 else -1.0)
        return e, float(values[i]), abs(float(overlaps[i])), i
    idx = torch.tensor(members)
    coef = overlaps[idx]
    e = vectors[:, idx] @ coef
    e = e / e.norm()
    lam = float((coef**2 * values[idx]).sum() / (coef**2).sum())
    return e, lam, mass**0.5, i


def ride(
    loss_fn: LossFn,
    theta: Tensor,
    direction: Tensor,
    eigenvalue: float,
    settings: RRSettings,
    max_steps: int | None = None,
    hessian_fn: HessianFn | None = None,
    on_step: OnStep | None = None,
    hvp_fn: AnalyticHVP | None = None,
) -> RideOutcome:
    """Follow one ridge until EndRide, with the paper's backtracking step size.

    Each step tries ``α`` from twice the last accepted value (capped at ``settings.alpha``) and
    halves it until the step lowers the loss and the re-identified eigenvector's overlap with
    the previous one is at least ``overlap_threshold``. EndRide reasons: ``convex`` (the followed
    eigenvalue is no longer below ``-zero_tol``), ``overlap`` (no step size keeps the ridge),
    ``no_progress`` (no step size lowers the loss, or the decrease is negligible) and
    ``max_steps``. With ``step_rule="fixed"`` every step is ``settings.alpha`` and is taken
    without either test; such a ride also ends as ``diverged`` when the loss is no longer
    finite. ``hessian_fn`` replaces the autograd Hessian; ``hvp_fn`` gives approximate rides a
    hand-written HVP. ``on_step(steps, loss)`` is called
    after every accepted step (a long ride's live progress; it must be cheap and not raise).
    """
    if hessian_fn is None:

        def hessian_fn(x: Tensor) -> Tensor:
            return dense_hessian(loss_fn, x)

    cap = settings.max_ride_steps if max_steps is None else min(max_steps, settings.max_ride_steps)
    fixed = settings.update == "fixed"
    approx = settings.method == "approx"
    track = track_from_direction(direction, eigenvalue) if approx else None
    theta = theta.detach().clone()
    e = direction / direction.norm()
    lam = float(eigenvalue)
    loss = float(loss_fn(theta))
    losses = [loss]
    steps = 0
    crossings = 0
    rank: int | None = None

    def update_at(cand: Tensor) -> tuple[Tensor, float, float, int | None, RidgeTrack | None]:
        """UpdateRidge at a candidate point: direction, eigenvalue, overlap, rank, track."""
        if fixed:
            return e, lam, 1.0, rank, track
        if approx:
            assert track is not None
            upd = approx_update_ridge(
                loss_fn,
                cand,
                track,
                method=settings.approx_update,
                tol=settings.approx_tol,
                steps=settings.approx_steps,
                lr_e=settings.approx_lr_e or None,
                lr_lambda=settings.approx_lr_lambda or None,
                analytic=hvp_fn,
            )
            new_rank = (rank or 0) + int(upd.crossing)
            return upd.direction, upd.eigenvalue, upd.overlap, new_rank, upd.track
        e_new, lam_new, overlap, new_rank = _update_exact(hessian_fn, cand, e, settings)
        return e_new, lam_new, overlap, new_rank, track

    backtrack = settings.step_rule == "backtrack"
    alpha = settings.alpha
    reason = "max_steps"
    while steps < cap:
        a = min(settings.alpha, 2.0 * alpha) if steps else settings.alpha
        failure = "no_progress"
        accepted = None
        if not backtrack:
            cand = theta - a * e
            cand_loss = float(loss_fn(cand))
            if math.isfinite(cand_loss):
                e_new, lam_new, _, new_rank, track = update_at(cand)
                accepted = (cand, cand_loss, e_new, lam_new, new_rank)
            failure = "diverged"
        while backtrack and a >= settings.alpha_min:
            cand = theta - a * e
            cand_loss = float(loss_fn(cand))
            if cand_loss < loss:
                e_new, lam_new, overlap, new_rank, new_track = update_at(cand)
                if overlap >= settings.overlap_threshold:
                    accepted = (cand, cand_loss, e_new, lam_new, new_rank)
                    track = new_track
                    break
                failure = "overlap"
            else:
                failure = "no_progress"
            a *= 0.5
        if accepted is None:
            reason = failure
            break
        prev_loss = loss
        theta, loss, e, lam, new_rank = accepted
        if rank is not None and new_rank is not None and new_rank != rank:
            crossings += 1
        rank = new_rank
        alpha = a
        steps += 1
        losses.append(loss)
        if on_step is not None:
            on_step(steps, loss)
        if settings.end_on_convex and not fixed and lam >= -settings.zero_tol:
            reason = "convex"
            break
        if backtrack and prev_loss - loss <= settings.min_progress * (1.0 + abs(prev_loss)):
            reason = "no_progress"
            break
    return RideOutcome(theta, e, lam, losses, steps, reason, crossings)


def polish(
    loss_fn: LossFn,
    theta: Tensor,
    steps: int,
    lr: float,
    tol: float = 1e-10,
    *,
    on_step: OnStep | None = None,
    offset: int = 0,
) -> tuple[Tensor, int]:
    """Gradient descent at a leaf (the paper's Fig. 1 finishes leaves this way).

    Stops early once ``‖∇L‖ ≤ tol``. Returns the point and the gradient steps taken (they count
    against the step budget like ride steps). ``on_step(offset + taken, loss)`` reports live
    progress after each step, as a ride does (``offset``: the ride's steps before the polish);
    the loss after a step comes with the next gradient, so only the last costs a forward pass.
    """
    x = theta.detach().clone()
    for taken in range(steps):
        loss, g = value_and_gradient(loss_fn, x)
        if on_step is not None and taken:
            on_step(offset + taken, float(loss))
        if float(g.norm()) <= tol:
            return x, taken
        x = x - lr * g
    if on_step is not None and steps:
        on_step(offset + steps, float(loss_fn(x)))
    return x, steps
