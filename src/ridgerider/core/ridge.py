"""Exact Ridge Rider: GetRidges, UpdateRidge, the backtracking ride and EndRide (Algorithm 1).

Conventions. A ridge is a unit eigenvector ``e`` of ``H = ∇²L`` with eigenvalue ``λ < 0``; the
ride steps ``θ ← θ − α·e``. From a saddle both ``+e`` and ``−e`` descend, so GetRidges returns
both signs, relative to the canonical sign of :func:`~ridgerider.core.curvature.canonical_sign`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

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
from ridgerider.core.eigen_groups import group_starts
from ridgerider.core.hvp import AnalyticHVP
from ridgerider.core.minibatch import Curvature, CurvatureAt
from ridgerider.core.settings import RRSettings
from ridgerider.core.update_ridge import HessianFn, update_exact

OnStep = Callable[[int, float], None]
"""Live progress of a ride: called with the steps taken so far and the current loss."""

__all__ = [
    "HessianFn",
    "OnStep",
    "Polished",
    "RideOutcome",
    "Ridge",
    "get_ridges",
    "is_finite",
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


def get_ridges(
    loss_fn: LossFn,
    theta: Tensor,
    settings: RRSettings,
    generator: torch.Generator | None = None,
    hessian_fn: HessianFn | None = None,
    hvp_fn: AnalyticHVP | None = None,
    curvature_loss: LossFn | None = None,
) -> tuple[list[Ridge], Tensor]:
    """GetRidges at ``θ``: the ``N`` most negative eigenpairs, both signs.

    Returns the ridges in exploration order (eigen-index ascending, ``+`` before ``−``) and the
    full ascending spectrum. With ``ridge_rule="random_ascent"`` (the paper's ablation) the
    directions are ``N`` random unit vectors oriented so that ``−α·u`` descends.
    ``hessian_fn`` replaces the autograd Hessian (problems with a closed form pass theirs);
    ``hvp_fn`` gives approximate RR a hand-written HVP (``Problem.exact_hvp``).
    ``curvature_loss`` is the loss whose Hessian is decomposed when it is not ``loss_fn`` (a
    minibatch's, ``RRSettings.hvp_batch``; ``hessian_fn`` and ``hvp_fn`` must then be its own);
    the descent test of ``signs="descent"`` keeps the gradient of ``loss_fn``.
    """
    curv = loss_fn if curvature_loss is None else curvature_loss
    if settings.method == "approx":
        spectrum = approx_get_ridges(
            curv,
            theta,
            settings.n_ridges,
            tol=settings.approx_tol,
            generator=generator,
            analytic=hvp_fn,
            group_tol=settings.repeat_tol if settings.one_per_group else None,
            zero_tol=settings.zero_tol,
        )
        values, vectors = spectrum.values, canonical_sign(spectrum.vectors)
        h, scale = None, spectrum.norm_estimate
    else:
        h = hessian_fn(theta) if hessian_fn is not None else dense_hessian(curv, theta)
        values, vectors = symmetric_eigh(h)
        scale = None  # the whole spectrum: its largest |λ|
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
            uhu = float(u @ h @ u) if h is not None else float(u @ hvp(curv, theta, u))
            ridges.append(Ridge((i, 1), u, uhu))
        return ridges, values
    chosen = (
        group_starts(values, idx, settings.repeat_tol, scale)
        if settings.one_per_group
        else idx.tolist()
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


@dataclass(frozen=True)
class _Rules:
    """What a ride needs besides its state: the loss, the settings and the curvature."""

    loss_fn: LossFn
    settings: RRSettings
    hessian_fn: HessianFn
    hvp_fn: AnalyticHVP | None
    curvature_at: CurvatureAt | None = None
    """Minibatch curvature of each step (``RRSettings.hvp_batch``); ``None``: the loss's own."""

    def curvature(self, step: int) -> Curvature:
        """Where the curvature of ride step ``step`` comes from."""
        if self.curvature_at is None:
            return Curvature(self.loss_fn, self.hessian_fn, self.hvp_fn)
        return self.curvature_at(step)


@dataclass
class _Riding:
    """A ride in progress: the point, the followed ridge and the bookkeeping of its steps."""

    theta: Tensor
    e: Tensor
    lam: float
    loss: float
    losses: list[float]
    track: RidgeTrack | None
    alpha: float
    """The last accepted step size."""
    steps: int = 0
    crossings: int = 0
    rank: int | None = None


@dataclass(frozen=True)
class _Step:
    """A candidate step ``θ − α·e`` and the ridge UpdateRidge re-identified there."""

    theta: Tensor
    loss: float
    e: Tensor
    lam: float
    overlap: float
    rank: int | None
    track: RidgeTrack | None
    alpha: float


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
    curvature_at: CurvatureAt | None = None,
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
    ``curvature_at(k)`` gives UpdateRidge after step ``k`` its curvature (a seeded minibatch,
    ``core.minibatch``); the loss the ride records and tests is always ``loss_fn``.
    """
    if hessian_fn is None:

        def hessian_fn(x: Tensor) -> Tensor:
            return dense_hessian(loss_fn, x)

    cap = settings.max_ride_steps if max_steps is None else min(max_steps, settings.max_ride_steps)
    rules = _Rules(loss_fn, settings, hessian_fn, hvp_fn, curvature_at)
    r = _start_ride(rules, theta, direction, eigenvalue)
    take_step = _backtrack if settings.step_rule == "backtrack" else _fixed_step
    reason = "max_steps"
    while r.steps < cap:
        a = min(settings.alpha, 2.0 * r.alpha) if r.steps else settings.alpha
        step, failure = take_step(rules, r, a)
        if step is None:
            reason = failure
            break
        prev_loss = r.loss
        _advance(r, step)
        if on_step is not None:
            on_step(r.steps, r.loss)
        end = _end_reason(settings, r, prev_loss)
        if end is not None:
            reason = end
            break
    return RideOutcome(r.theta, r.e, r.lam, r.losses, r.steps, reason, r.crossings)


def _start_ride(rules: _Rules, theta: Tensor, direction: Tensor, eigenvalue: float) -> _Riding:
    """The state at the branch point: a unit ridge, the loss there, the full step size."""
    approx = rules.settings.method == "approx"
    track = track_from_direction(direction, eigenvalue) if approx else None
    theta = theta.detach().clone()
    e = direction / direction.norm()
    loss = float(rules.loss_fn(theta))
    return _Riding(theta, e, float(eigenvalue), loss, [loss], track, rules.settings.alpha)


def _update_at(rules: _Rules, r: _Riding, cand: Tensor, cand_loss: float, a: float) -> _Step:
    """UpdateRidge at a candidate point: the re-identified direction, eigenvalue and overlap."""
    settings = rules.settings
    if settings.update == "fixed":
        return _Step(cand, cand_loss, r.e, r.lam, 1.0, r.rank, r.track, a)
    curv = rules.curvature(r.steps + 1)
    if settings.method == "approx":
        assert r.track is not None
        upd = approx_update_ridge(
            curv.loss,
            cand,
            r.track,
            method=settings.approx_update,
            tol=settings.approx_tol,
            steps=settings.approx_steps,
            lr_e=settings.approx_lr_e or None,
            lr_lambda=settings.approx_lr_lambda or None,
            analytic=curv.hvp,
        )
        new_rank = (r.rank or 0) + int(upd.crossing)
        return _Step(
            cand, cand_loss, upd.direction, upd.eigenvalue, upd.overlap, new_rank, upd.track, a
        )
    e_new, lam_new, overlap, new_rank = update_exact(curv.hessian, cand, r.e, settings)
    return _Step(cand, cand_loss, e_new, lam_new, overlap, new_rank, r.track, a)


def _fixed_step(rules: _Rules, r: _Riding, a: float) -> tuple[_Step | None, str]:
    """``step_rule="fixed"``: step by ``α`` untested; ``None`` when the loss is not finite."""
    cand = r.theta - a * r.e
    cand_loss = float(rules.loss_fn(cand))
    if not math.isfinite(cand_loss):
        return None, "diverged"
    return _update_at(rules, r, cand, cand_loss, a), "diverged"


def _backtrack(rules: _Rules, r: _Riding, a: float) -> tuple[_Step | None, str]:
    """Halve ``α`` from ``a`` until a step lowers the loss and keeps the ridge.

    Returns the accepted step, or ``None`` and why every step size down to ``alpha_min``
    failed (``no_progress`` or ``overlap``, whichever the smallest try met).
    """
    settings = rules.settings
    failure = "no_progress"
    while a >= settings.alpha_min:
        cand = r.theta - a * r.e
        cand_loss = float(rules.loss_fn(cand))
        if cand_loss < r.loss:
            step = _update_at(rules, r, cand, cand_loss, a)
            if step.overlap >= settings.overlap_threshold:
                return step, failure
            failure = "overlap"
        else:
            failure = "no_progress"
        a *= 0.5
    return None, failure


def _advance(r: _Riding, step: _Step) -> None:
    """Take an accepted step, counting a crossing when the ridge changed spectral rank."""
    if r.rank is not None and step.rank is not None and step.rank != r.rank:
        r.crossings += 1
    r.theta, r.loss, r.e = step.theta, step.loss, step.e
    r.lam, r.rank, r.track = step.lam, step.rank, step.track
    r.alpha = step.alpha
    r.steps += 1
    r.losses.append(r.loss)


def _end_reason(settings: RRSettings, r: _Riding, prev_loss: float) -> str | None:
    """EndRide after an accepted step: ``convex``, ``no_progress`` or ``None`` to go on."""
    if settings.end_on_convex and settings.update != "fixed" and r.lam >= -settings.zero_tol:
        return "convex"
    backtrack = settings.step_rule == "backtrack"
    if backtrack and prev_loss - r.loss <= settings.min_progress * (1.0 + abs(prev_loss)):
        return "no_progress"
    return None


class Polished(NamedTuple):
    """Where a polish ended."""

    theta: Tensor
    steps: int
    """Gradient steps taken (they count against the step budget like ride steps)."""
    diverged: bool
    """The next step would have left the finite numbers; ``theta`` is the last finite point."""


def is_finite(theta: Tensor, loss: float) -> bool:
    """Whether a point and its loss are ordinary numbers (no NaN, no ±Inf)."""
    return math.isfinite(loss) and bool(torch.isfinite(theta).all())


def polish(
    loss_fn: LossFn,
    theta: Tensor,
    steps: int,
    lr: float,
    tol: float = 1e-10,
    *,
    on_step: OnStep | None = None,
    offset: int = 0,
) -> Polished:
    """Gradient descent at a leaf (the paper's Fig. 1 finishes leaves this way).

    Stops early once ``‖∇L‖ ≤ tol``, or when a step would make θ, the loss or the gradient
    non-finite (a learning rate far too large): then it returns the last finite point with
    ``diverged=True``. ``on_step(offset + taken, loss)`` reports live progress after each step,
    as a ride does (``offset``: the ride's steps before the polish); the loss after a step
    comes with the next gradient, so only the last costs a forward pass.
    """
    x = theta.detach().clone()
    prev = x  # after ``taken - 1`` steps: where a diverging polish stops
    for taken in range(steps):
        loss, g = value_and_gradient(loss_fn, x)
        value = float(loss)
        if not (is_finite(x, value) and bool(torch.isfinite(g).all())):
            return Polished(prev, max(taken - 1, 0), True)
        if on_step is not None and taken:
            on_step(offset + taken, value)
        if float(g.norm()) <= tol:
            return Polished(x, taken, False)
        prev = x
        x = x - lr * g
    last = float(loss_fn(x))
    if steps and not is_finite(x, last):
        return Polished(prev, steps - 1, True)
    if on_step is not None and steps:
        on_step(offset + steps, last)
    return Polished(x, steps, False)
