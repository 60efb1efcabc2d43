"""Several exact branches of one job ridden together, each bit for bit as :func:`expand` alone.

Exact RR spends a ride step on a dense Hessian, an ``eigh`` and the Python around them. Here the
rides of several branches advance in lockstep: every round tries one step size per unfinished
ride (the candidates' losses in one ``Problem.losses`` call), and the candidates that lower the
loss get their Hessians (``Problem.hessians``), their symmetrisation and ``eigh`` in one
batched call each (no canonical signs: the continuation does not depend on them), and their
continuations of the ridge together (``core.continue_batched``); each ride then accepts,
halves its step size or ends exactly as :func:`~ridgerider.core.ridge.ride` does.

Bit for bit, not "up to rounding": batched work is limited to what is computed entry by entry
(IEEE products, sums, differences, ``max``/``argmax``, whose results do not depend on the batch)
and to LAPACK's ``eigh`` (one call per matrix on CPU; checked against single calls in the
tests); whatever reduces through BLAS (the overlaps ``Vᵀe``) runs per branch on rows laid out
like the one-branch path's fresh tensors (``core.aligned``). GetRidges at the ride's end and the
records are ``core.expand``'s own (:func:`~ridgerider.core.expand.settle`,
:func:`~ridgerider.core.expand.record`); solution leaves are polished together
(``core.polish_batched``), each as ``polish`` alone.

Only exact, backtracking, ``update="exact"`` rides of non-root branches on CPU, on problems
whose samples do not depend on the node (``Problem.at_node`` not overridden) and without
``hvp_batch``, are batched; every other branch is expanded by :func:`expand` on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import Tensor

from ridgerider.core.branch import Branch
from ridgerider.core.continue_batched import continue_alone, continue_many
from ridgerider.core.expand import Expansion, Ridden, Settled, expand, record, settle
from ridgerider.core.polish_batched import batched_method, polish_many
from ridgerider.core.problem import Problem
from ridgerider.core.ridge import OnStep
from ridgerider.core.settings import RRSettings

_T = TypeVar("_T")

BATCHED_LOSSES_FROM = 4
"""Fewest candidates whose losses one ``Problem.losses`` call computes (fewer: one by one,
cheaper for two or three on ``tree-rl`` and ``lever-game``)."""

__all__ = ["batchable", "batched_eigh", "expand_each", "expand_many", "hessians_of"]


def expand_many(
    problem: Problem,
    settings: RRSettings,
    branches: Sequence[Branch],
    on_step: Sequence[OnStep | None] | None = None,
) -> list[Expansion]:
    """:func:`~ridgerider.core.expand.expand` of every branch, the exact rides batched.

    Returns, branch by branch, exactly what ``expand(problem, settings, branch)`` returns (node
    θ, losses, steps, end reason, children, metrics: the same bits). ``on_step[i]`` is branch
    ``i``'s live progress, as ``expand``'s ``on_step``. The first branch that raises raises
    here; :func:`expand_each` returns the errors instead.
    """
    out = expand_each(problem, settings, branches, on_step)
    for result in out:
        if isinstance(result, Exception):
            raise result
    return [r for r in out if isinstance(r, Expansion)]


def expand_each(
    problem: Problem,
    settings: RRSettings,
    branches: Sequence[Branch],
    on_step: Sequence[OnStep | None] | None = None,
) -> list[Expansion | Exception]:
    """:func:`expand_many`, where a branch that raises gets its exception and fails alone.

    The exception is the one ``expand`` raises for that branch alone (a batched Hessian or
    ``eigh`` that raises is redone branch by branch to find whose it is).
    """
    steps = list(on_step) if on_step is not None else [None] * len(branches)
    lanes = [i for i, b in enumerate(branches) if b.direction is not None]
    if len(lanes) < 2 or not batchable(problem, settings):
        lanes = []
    out: list[Expansion | Exception | None] = [None] * len(branches)
    for i, branch in enumerate(branches):
        if i not in lanes:
            out[i] = _guard(lambda b=branch, s=steps[i]: expand(problem, settings, b, s))
    ridden = ride_many(problem, settings, [branches[i] for i in lanes], [steps[i] for i in lanes])
    settled: dict[int, Settled | Exception] = {}
    for i, r in zip(lanes, ridden, strict=True):
        gen = torch.Generator().manual_seed(branches[i].seed)
        settled[i] = (
            r
            if isinstance(r, Exception)
            else _guard(lambda b=branches[i], r=r, g=gen: settle(problem, settings, b, r, g))
        )
    diverged = _polish(problem, settings, settled, steps)
    for i, leaf in settled.items():
        gone = diverged.get(i, False)
        if isinstance(leaf, Exception) or isinstance(gone, Exception):
            out[i] = leaf if isinstance(leaf, Exception) else gone
            continue
        out[i] = _guard(lambda leaf=leaf, gone=gone: record(leaf, gone))
    return [r for r in out if r is not None]


def _guard(fn: Callable[[], _T]) -> _T | Exception:
    try:
        return fn()
    except Exception as exc:
        return exc


def _polish(
    problem: Problem,
    settings: RRSettings,
    settled: dict[int, Settled | Exception],
    steps: Sequence[OnStep | None],
) -> dict[int, bool | Exception]:
    """Polish the settled solution leaves together; whether each diverged (or its error).

    Each leaf's ``ridden`` moves to where its polish ends, as ``expand``'s polish moves it.
    """
    leaves = {i: s for i, s in settled.items() if isinstance(s, Settled) and s.polished}
    if not leaves:
        return {}
    done = polish_many(
        problem,
        [s.ridden.theta for s in leaves.values()],
        settings.polish_steps,
        settings.polish_lr,
        [steps[i] for i in leaves],
        [s.ridden.steps for s in leaves.values()],
    )
    out: dict[int, bool | Exception] = {}
    for (i, leaf), result in zip(leaves.items(), done, strict=True):
        if isinstance(result, Exception):
            out[i] = result
            continue
        leaf.ridden.theta = result.theta
        leaf.ridden.steps += result.steps
        out[i] = result.diverged
    return out


def batchable(problem: Problem, settings: RRSettings) -> bool:
    """Whether :func:`expand_many` rides this job's branches together (else one by one)."""
    return (
        settings.rides_together()
        and "at_node" not in getattr(problem, "__dict__", {})
        and type(problem).at_node is Problem.at_node
    )


def hessians_of(problem: Problem) -> Callable[[Sequence[Tensor]], Tensor]:
    """The problem's batched Hessians if written beside its ``hessian``, else a loop of it."""
    found = batched_method(problem, "hessians", "hessian")
    if found is not None:
        return found  # type: ignore[return-value]
    return lambda thetas: torch.stack([problem.hessian(t) for t in thetas])


def batched_eigh(h: Tensor) -> tuple[Tensor, Tensor]:
    """``symmetric_eigh(h[k], signed=False)`` of each matrix of ``h`` ``[B, n, n]``, the same bits.

    The symmetrisation is entrywise and ``eigh`` runs LAPACK per matrix on CPU. The vectors keep
    LAPACK's signs: UpdateRidge, the only batched user, does not depend on them
    (``update_ridge.continuation``).
    """
    values, vectors = torch.linalg.eigh(0.5 * (h + h.mT))
    return values, vectors


@dataclass
class _Lane:
    """One branch's ride in progress (the locals of ``core.ridge.ride``)."""

    theta: Tensor
    e: Tensor
    lam: float
    loss: float
    losses: list[float]
    on_step: OnStep | None
    alpha: float
    trial: float
    failure: str = "no_progress"
    steps: int = 0
    crossings: int = 0
    rank: int | None = None
    reason: str | None = None
    error: Exception | None = None
    cand: tuple[Tensor, float] | None = None

    def ridden(self) -> Ridden | Exception:
        if self.error is not None:
            return self.error
        return Ridden(
            self.theta,
            self.steps,
            self.reason or "max_steps",
            self.losses,
            self.lam,
            self.crossings,
        )


def ride_many(
    problem: Problem,
    settings: RRSettings,
    branches: Sequence[Branch],
    on_step: Sequence[OnStep | None],
) -> list[Ridden | Exception]:
    """Ride every branch's ridge in lockstep; each ends where ``core.ridge.ride`` ends alone."""
    lanes: list[_Lane] = []
    for branch, report in zip(branches, on_step, strict=True):
        assert branch.direction is not None and branch.eigenvalue is not None
        lane = _Lane(branch.theta, branch.direction, 0.0, 0.0, [], report, 0.0, 0.0)
        try:  # as ride's _start_ride
            theta = branch.theta.detach().clone()
            e = branch.direction / branch.direction.norm()
            loss = float(problem.loss(theta))
            lane = _Lane(theta, e, float(branch.eigenvalue), loss, [loss], report, 0.0, 0.0)
            lane.alpha = lane.trial = settings.alpha
        except Exception as exc:
            lane.error = exc
        if settings.max_ride_steps <= 0:
            lane.reason = "max_steps"
        lanes.append(lane)
    hessians = hessians_of(problem)
    losses = batched_method(problem, "losses", "loss")
    while active := [x for x in lanes if x.reason is None and x.error is None]:
        pending = _try_steps(problem, settings, losses, active)  # type: ignore[arg-type]
        if pending:
            _update_ridges(problem, settings, hessians, pending)
    return [x.ridden() for x in lanes]


def _try_steps(
    problem: Problem,
    settings: RRSettings,
    losses: Callable[[Sequence[Tensor]], Tensor] | None,
    lanes: list[_Lane],
) -> list[_Lane]:
    """One backtracking try of every lane; those whose candidate lowers the loss.

    The candidates' losses come from one batched ``Problem.losses`` call where the problem
    writes one beside its ``loss`` (the same bits), else from ``loss`` lane by lane.
    """
    tried: list[tuple[_Lane, Tensor]] = []
    for lane in lanes:
        if lane.trial < settings.alpha_min:  # every step size down to alpha_min failed
            lane.reason = lane.failure
            continue
        try:
            tried.append((lane, lane.theta - lane.trial * lane.e))
        except Exception as exc:
            lane.error = exc
    pending: list[_Lane] = []
    for (lane, cand), cand_loss in zip(tried, _losses(problem, losses, tried), strict=True):
        if isinstance(cand_loss, Exception):
            lane.error = cand_loss
        elif cand_loss < lane.loss:
            lane.cand = (cand, cand_loss)
            pending.append(lane)
        else:
            lane.failure = "no_progress"
            lane.trial *= 0.5
    return pending


def _losses(
    problem: Problem,
    losses: Callable[[Sequence[Tensor]], Tensor] | None,
    tried: list[tuple[_Lane, Tensor]],
) -> list[float | Exception]:
    """Each candidate's loss (or the exception its lane's ``loss`` raises)."""
    cands = [c for _, c in tried]
    if losses is not None and len(cands) >= BATCHED_LOSSES_FROM:
        try:
            return losses(cands).tolist()  # type: ignore[no-any-return]
        except Exception:  # find whose: each alone
            pass
    return [_guard(lambda c=c: float(problem.loss(c))) for c in cands]


def _update_ridges(
    problem: Problem,
    settings: RRSettings,
    hessians: Callable[[Sequence[Tensor]], Tensor],
    pending: list[_Lane],
) -> None:
    """UpdateRidge at every pending candidate, spectra batched; accept or halve the step."""
    cands = [x.cand for x in pending if x.cand is not None]
    prevs = [x.e for x in pending]
    try:
        values, vectors = batched_eigh(hessians([c for c, _ in cands]))
        found = continue_many(values, vectors, prevs, settings)
    except Exception:  # find whose: each alone, as update_exact computes it
        found = [
            continue_alone(problem.hessian, c, e, settings)
            for (c, _), e in zip(cands, prevs, strict=True)
        ]
    for lane, result in zip(pending, found, strict=True):
        assert lane.cand is not None
        cand, cand_loss = lane.cand
        lane.cand = None
        if isinstance(result, Exception):
            lane.error = result
            continue
        try:
            e, lam, overlap, rank = result
            if overlap >= settings.overlap_threshold:
                _accept(settings, lane, cand, cand_loss, e, lam, rank)
            else:
                lane.failure = "overlap"
                lane.trial *= 0.5
        except Exception as exc:  # this branch's alone (its on_step, its continuation)
            lane.error = exc


def _accept(
    settings: RRSettings,
    lane: _Lane,
    cand: Tensor,
    cand_loss: float,
    e: Tensor,
    lam: float,
    rank: int,
) -> None:
    """Take the step (``ride``'s ``_advance``), report it, then EndRide or the next step size."""
    prev_loss = lane.loss
    if lane.rank is not None and rank != lane.rank:
        lane.crossings += 1
    lane.theta, lane.loss, lane.e, lane.lam, lane.rank = cand, cand_loss, e, lam, rank
    lane.alpha = lane.trial
    lane.steps += 1
    lane.losses.append(cand_loss)
    if lane.on_step is not None:
        lane.on_step(lane.steps, lane.loss)
    if settings.end_on_convex and lam >= -settings.zero_tol:
        lane.reason = "convex"
    elif prev_loss - cand_loss <= settings.min_progress * (1.0 + abs(prev_loss)):
        lane.reason = "no_progress"
    elif lane.steps >= settings.max_ride_steps:
        lane.reason = "max_steps"
    else:
        lane.trial = min(settings.alpha, 2.0 * lane.alpha)
        lane.failure = "no_progress"
