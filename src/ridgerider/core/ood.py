"""Ridge Rider for out-of-distribution generalisation (paper §3), ``method="ood"``.

Two players each see one training environment and want consistent features; RR adapts by
following ridges that are common to all environments. θ splits into features ``θ_f`` and a head
``θ_r`` (the problem's ``head_slice()``); ``H_i`` is environment ``i``'s Hessian restricted to
``Θ_r``. A common negative eigenpair ``H_i e = λ e`` (all ``i``, ``λ < 0``) rarely exists in the
raw parameters, so the features are trained to make one: ``core.ood_losses`` defines L1 (the
direction ``e_r`` is an eigenvector of every ``H_i`` with negative curvature, low loss, equal
eigenvalues) and L2 (the ``H_i`` agree along random directions). The engine's steps become:

* **MIS** (:func:`find_ood_mis`): minimise L1 + L2 over ``(θ_f, e_r)`` from the problem's start
  (``θ_r`` fixed, a random unit ``e_r``) for ``ood_mis_steps``; when the mean training loss is not
  below ``ood_mis_loss`` the network is resampled (``Problem.random_init`` with the job's
  generator) up to ``ood_mis_tries`` times in all, keeping the lowest-loss try (the paper resamples
  "when optimization fails to obtain a low loss").
* **GetRidges** (:func:`ood_get_ridges`): the ``ood_ridges`` most negative eigenvectors of the
  mean head Hessian ``(H_1 + H_2)/2`` (dense ``eigh``: the head has a few hundred parameters),
  each refined by ``ood_refine_steps`` Adam steps on the ``e_r`` terms of L1 with the features
  fixed (towards an approximate common eigenvector), each with both signs. A refinement that
  ends without negative mean curvature (the β4 term can pull ``e_r`` to where the two Hessians
  agree, which may be a positive direction) is dropped for the eigenvector itself: a ridge must
  start downhill in curvature. Directions are full θ-vectors, zero outside the head; the
  branch's eigenvalue is ``êᵀ H̄ ê``.
* **Ride** (:func:`ood_ride`): ``ood_ride_steps`` times (the paper reports its best "after nine
  steps along the ridge"): ``ood_inner_steps`` Adam steps on L1 + L2 over ``(θ_f, e_r)``, then
  one RR step ``θ_r ← θ_r − ood_alpha · ê``. It ends early (``convex``) once ``êᵀ H̄ ê`` is no
  longer below ``-zero_tol``, or (``diverged``) when the loss is no longer finite. Each RR step
  counts as one step of the node.

Choices of ours (the paper's appendix C.3 with its pseudo-code and values was not available):
Adam rather than plain SGD (``θ_f`` and ``e_r`` have very different scales; Adam's per-coordinate
scaling needs no tuning per problem), one Adam state per ride or MIS try (a pure function of the
branch), L2's probes ``u`` drawn afresh (``ood_probes`` of them) at every step from the branch's
seeded generator, and ``e_r`` used through ``ê = e_r/‖e_r‖``. Everything is seeded by the branch,
so a branch replays identically on any worker.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ridgerider.core.curvature import canonical_sign, gradient, symmetric_eigh
from ridgerider.core.errors import SettingsError
from ridgerider.core.mis import MISResult
from ridgerider.core.ood_losses import OODWeights, l1_loss, l2_loss
from ridgerider.core.problem import Problem, supports_environments
from ridgerider.core.ridge import OnStep, RideOutcome, Ridge, negative_spectrum
from ridgerider.core.settings import RRSettings

__all__ = [
    "OODState",
    "autograd_head_hessians",
    "check_ood_problem",
    "find_ood_mis",
    "head_hessians",
    "ood_get_ridges",
    "ood_ride",
    "refine_direction",
]


def check_ood_problem(problem: Problem, settings: RRSettings) -> None:
    """Raise :class:`SettingsError` on ``method`` for ``ood`` on a problem without environments."""
    if settings.method == "ood" and not supports_environments(problem):
        raise SettingsError(
            "method",
            f"method 'ood' needs a problem with training environments and a head "
            f"(environment_losses, head_slice); {problem.name or type(problem).__name__!r} "
            "has none (try colored-digits or colored-mnist)",
        )


def weights(settings: RRSettings) -> OODWeights:
    """β1..β5 from the settings."""
    s = settings
    return OODWeights(s.ood_beta1, s.ood_beta2, s.ood_beta3, s.ood_beta4, s.ood_beta5)


def head_hessians(problem: Any, theta: Tensor) -> list[Tensor]:
    """Each environment's head Hessian at ``θ``: the problem's closed form, else autograd's.

    Differentiable in whatever of ``θ`` requires grad (the callers detach the head: the
    stop-gradient of ``(· | θ_r)``).
    """
    own = getattr(problem, "head_hessians", None)
    if own is not None:
        return list(own(theta))
    return autograd_head_hessians(problem, theta)


def autograd_head_hessians(problem: Any, theta: Tensor) -> list[Tensor]:
    """Each environment's head Hessian at ``θ`` by autograd (differentiable, as above)."""
    head: slice = problem.head_slice()
    out = []
    for i in range(len(problem.environment_losses(theta.detach()))):

        def env_loss(r: Tensor, i: int = i) -> Tensor:
            full = torch.cat([theta[: head.start], r, theta[head.stop :]])
            return problem.environment_losses(full)[i]

        out.append(torch.autograd.functional.hessian(env_loss, theta[head], create_graph=True))
    return out


def _mean(mats: list[Tensor]) -> Tensor:
    h = torch.stack([m.detach() for m in mats]).mean(0)
    return 0.5 * (h + h.T)


def _unit(v: Tensor) -> Tensor:
    return v / v.norm().clamp_min(1e-30)


class OODState:
    """``θ`` split into ``θ_f`` (trained by L1 + L2), ``θ_r`` (moved by RR steps) and ``e_r``."""

    def __init__(self, problem: Any, theta: Tensor, e_r: Tensor, settings: RRSettings) -> None:
        self.problem, self.settings, self.weights = problem, settings, weights(settings)
        self.head: slice = problem.head_slice()
        self.full = theta.detach().clone()
        self.mask = torch.ones(theta.numel(), dtype=torch.bool, device=theta.device)
        self.mask[self.head] = False
        self.theta_f = self.full[self.mask].clone().requires_grad_(True)
        self.e = e_r.detach().clone().requires_grad_(True)
        self.opt = torch.optim.Adam(
            [
                {"params": [self.theta_f], "lr": settings.ood_lr},
                {"params": [self.e], "lr": settings.ood_lr_e},
            ]
        )

    def theta(self) -> Tensor:
        """The whole θ now (detached)."""
        out = self.full.clone()
        out[self.mask] = self.theta_f.detach()
        return out

    def unit_e(self) -> Tensor:
        """``ê`` now (detached)."""
        return _unit(self.e.detach())

    def _joined(self) -> Tensor:
        out = self.full.detach().clone()
        return out.masked_scatter(self.mask, self.theta_f)

    def objective(self, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """L1 + L2 at the current point (with graph) and the mean environment loss."""
        theta = self._joined()
        losses = self.problem.environment_losses(theta)
        hess = head_hessians(self.problem, theta)
        r = hess[0].shape[0]
        probes = torch.randn(r, self.settings.ood_probes, generator=generator, dtype=theta.dtype)
        probes = probes.to(theta.device)
        probes = probes / probes.norm(dim=0).clamp_min(1e-30)
        e_hat = self.e / self.e.norm().clamp_min(1e-30)
        total = l1_loss(losses, hess, e_hat, self.weights) + l2_loss(hess, probes, self.weights)
        return total, torch.stack([x.detach() for x in losses]).mean()

    def train(self, steps: int, generator: torch.Generator) -> float:
        """``steps`` Adam steps on L1 + L2 over ``(θ_f, e_r)``; the last mean env loss."""
        mean_loss = float("nan")
        for _ in range(steps):
            self.opt.zero_grad()
            total, mean = self.objective(generator)
            total.backward()
            self.opt.step()
            mean_loss = float(mean)
        return mean_loss

    def rr_step(self, alpha: float) -> None:
        """One step along the ridge: ``θ_r ← θ_r − α·ê``."""
        self.full[self.mask] = self.theta_f.detach()
        self.full[self.head] -= alpha * self.unit_e()

    def eigenvalue(self) -> float:
        """``êᵀ H̄ ê`` with ``H̄`` the mean head Hessian now."""
        with torch.no_grad():
            hbar = _mean(head_hessians(self.problem, self.theta()))
            e = self.unit_e()
            return float(e @ hbar @ e)

    def direction(self) -> Tensor:
        """``ê`` as a full θ-vector (zero outside the head)."""
        out = torch.zeros_like(self.full)
        out[self.head] = self.unit_e()
        return out


def refine_direction(
    hessians: list[Tensor], e0: Tensor, settings: RRSettings, steps: int | None = None
) -> Tensor:
    """Adam steps on the ``e_r`` terms of L1 for fixed head Hessians; a unit vector back."""
    steps = settings.ood_refine_steps if steps is None else steps
    hess = [h.detach() for h in hessians]
    e = e0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([e], lr=settings.ood_lr_e)
    w = weights(settings)
    zeros = [e.new_zeros(()) for _ in hess]
    for _ in range(steps):
        opt.zero_grad()
        l1_loss(zeros, hess, e / e.norm().clamp_min(1e-30), w).backward()
        opt.step()
    return _unit(e.detach())


def ood_get_ridges(problem: Any, theta: Tensor, settings: RRSettings) -> tuple[list[Ridge], Tensor]:
    """GetRidges for ``ood``: refined most negative head eigenvectors, both signs (see above)."""
    with torch.no_grad():
        hess = [h.detach() for h in head_hessians(problem, theta.detach())]
    hbar = _mean(hess)
    values, vectors = symmetric_eigh(hbar)
    vectors = canonical_sign(vectors)
    head: slice = problem.head_slice()
    ridges = []
    for i in negative_spectrum(values, settings.zero_tol)[: settings.ood_ridges].tolist():
        e = refine_direction(hess, vectors[:, i], settings)
        lam = float(e @ hbar @ e)
        if lam >= -settings.zero_tol:  # refined off the negative curvature: keep the eigenvector
            e, lam = vectors[:, i], float(values[i])
        for sign in (1, -1):
            full = torch.zeros_like(theta)
            full[head] = sign * e
            ridges.append(Ridge((i, sign), full, lam))
    return ridges, values


def ood_ride(
    problem: Any,
    theta: Tensor,
    direction: Tensor,
    settings: RRSettings,
    generator: torch.Generator,
    on_step: OnStep | None = None,
) -> RideOutcome:
    """Alternate ``ood_inner_steps`` Adam steps on L1 + L2 with RR steps on ``θ_r`` (above)."""
    state = OODState(problem, theta, direction[problem.head_slice()], settings)
    losses = [float(problem.loss(theta))]
    lam = float("nan")
    reason = "max_steps"
    steps = 0
    while steps < settings.ood_ride_steps:
        state.train(settings.ood_inner_steps, generator)
        state.rr_step(settings.ood_alpha)
        steps += 1
        loss = float(problem.loss(state.theta()))
        losses.append(loss)
        if on_step is not None:
            on_step(steps, loss)
        if not torch.isfinite(torch.tensor(loss)) or not torch.isfinite(state.full).all():
            reason = "diverged"
            break
        lam = state.eigenvalue()
        if lam >= -settings.zero_tol:
            reason = "convex"
            break
    return RideOutcome(state.theta(), state.direction(), lam, losses, steps, reason, 0)


def find_ood_mis(problem: Any, settings: RRSettings, generator: torch.Generator) -> MISResult:
    """The ``ood`` branch point: L1 + L2 minimised, resampling on a high loss (see above)."""
    best: tuple[float, Tensor] | None = None
    tries = 0
    for tries in range(1, settings.ood_mis_tries + 1):
        start = problem.mis_start() if tries == 1 else problem.random_init(generator)
        r = problem.head_slice()
        e0 = torch.randn(start[r].numel(), generator=generator, dtype=start.dtype)
        e0 = e0.to(start.device)
        state = OODState(problem, start, e0, settings)
        mean = state.train(settings.ood_mis_steps, generator)
        if best is None or mean < best[0]:
            best = (mean, state.theta())
        if mean <= settings.ood_mis_loss:
            break
    assert best is not None
    theta = best[1]
    spectrum, _ = symmetric_eigh(_mean(head_hessians(problem, theta)))
    return MISResult(
        theta=theta,
        loss=float(problem.loss(theta)),
        grad_norm=float(gradient(problem.loss, theta).norm()),
        negative_eigenvalues=int((spectrum < -settings.zero_tol).sum()),
        spectrum=spectrum[:64].tolist(),
        method="ood",
        iterations=tries * settings.ood_mis_steps,
    )
