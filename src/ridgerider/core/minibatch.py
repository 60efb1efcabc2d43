"""Curvature from minibatches (``RRSettings.hvp_batch``), drawn so that branches replay.

With ``hvp_batch > 0`` GetRidges and UpdateRidge see the Hessian of the mean loss over
``hvp_batch`` training examples instead of all of them, as the paper's MNIST run does (batches
of 2,236). Each draw comes from a generator seeded by :func:`batch_seed` from the branch's seed
and the ride step (step 0: GetRidges at the end of the ride; step ``k ≥ 1``: UpdateRidge after
the ``k``-th step, every backtracking try of that step alike), so the same branch gives the same
node on any worker. The loss a ride records and tests, the metrics and the polish stay
full-batch: only curvature is subsampled.

A problem takes part by reporting :attr:`~ridgerider.core.problem.Problem.n_examples` and
implementing :meth:`~ridgerider.core.problem.Problem.minibatch`; :func:`check_minibatch`
refuses the setting on any other problem (a :class:`SettingsError` naming ``hvp_batch``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ridgerider.core.curvature import LossFn
from ridgerider.core.errors import SettingsError
from ridgerider.core.hvp import AnalyticHVP
from ridgerider.core.problem import Problem
from ridgerider.core.settings import RRSettings
from ridgerider.core.update_ridge import HessianFn

__all__ = [
    "Curvature",
    "CurvatureAt",
    "batch_indices",
    "batch_seed",
    "check_minibatch",
    "curvature_at",
]


@dataclass(frozen=True)
class Curvature:
    """Where one step's curvature comes from: a loss, its dense Hessian and hand-written HVP."""

    loss: LossFn
    hessian: HessianFn
    hvp: AnalyticHVP | None


CurvatureAt = Callable[[int], Curvature]
"""The curvature of ride step ``k`` (0: GetRidges at the ride's end)."""


def batch_seed(seed: int, step: int) -> int:
    """Seed of the minibatch of ``step`` in the branch with ``seed`` (a pure function)."""
    digest = hashlib.sha256(f"{seed}:hvp_batch:{step}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def batch_indices(n_examples: int, size: int, seed: int, step: int) -> torch.Tensor:
    """Sorted indices of ``size`` of ``n_examples`` examples, drawn without replacement."""
    g = torch.Generator().manual_seed(batch_seed(seed, step))
    return torch.sort(torch.randperm(n_examples, generator=g)[:size]).values


def check_minibatch(problem: Problem, settings: RRSettings) -> None:
    """Raise :class:`SettingsError` on ``hvp_batch`` if the problem cannot subsample its loss."""
    if settings.hvp_batch and problem.n_examples is None:
        raise SettingsError(
            "hvp_batch",
            f"hvp_batch must be 0 for {problem.name or type(problem).__name__}: its loss is no "
            f"mean over training examples, so it has no minibatches (got {settings.hvp_batch})",
        )


def curvature_at(problem: Problem, settings: RRSettings, seed: int) -> CurvatureAt | None:
    """Each step's minibatch curvature for the branch with ``seed``; ``None``: full batch.

    ``None`` when ``hvp_batch`` is 0 or at least the problem's number of examples.
    """
    check_minibatch(problem, settings)
    n = problem.n_examples
    size = settings.hvp_batch
    if not size or n is None or size >= n:
        return None

    def at(step: int) -> Curvature:
        sub = problem.minibatch(batch_indices(n, size, seed, step))
        return Curvature(sub.loss, sub.hessian, sub.exact_hvp)

    return at
