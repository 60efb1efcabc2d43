"""The paper's baselines, runnable on any problem with the same step budget as Ridge Rider.

* ``gd_random``: gradient descent from random initialisations (the paper's "GD (R)");
* ``gd_mis``: gradient descent from seeded small perturbations of the MIS ("GD (S)");
* ``random_vectors``: from the MIS, step along a random unit vector while the loss falls, then
  finish with gradient descent ("Random Vector (S)");
* ``fixed_eigenvectors``: the Ridge Rider tree with UpdateRidge disabled ("Fixed-EV");
* ``random_ascent``: the tree with random ascent directions instead of eigenvectors
  ("Rand. Ridge+").

Each returns the solution labels it reached (``problem.solution_key``) and the steps it used;
gradient steps and ride steps both count as one step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ridgerider.core.curvature import gradient
from ridgerider.core.mis import MISResult
from ridgerider.core.problem import Problem
from ridgerider.core.ridge import ride
from ridgerider.core.search import run_search
from ridgerider.core.settings import RRSettings

__all__ = ["BASELINES", "BaselineResult", "gradient_descent", "run_baseline"]

BASELINES = ("gd_random", "gd_mis", "random_vectors", "fixed_eigenvectors", "random_ascent")


@dataclass
class BaselineResult:
    """What a baseline reached within its budget."""

    name: str
    solution_keys: list[str | None] = field(default_factory=list)
    steps: int = 0
    episodes: int = 0

    def found(self, targets: list[str] | tuple[str, ...]) -> int:
        """How many distinct targets were reached."""
        return len({k for k in self.solution_keys if k is not None} & set(targets))


def gradient_descent(
    problem: Problem, theta: Tensor, lr: float, max_steps: int, tol: float = 1e-8
) -> tuple[Tensor, int]:
    """Plain gradient descent until ``‖∇L‖ ≤ tol`` or ``max_steps``; returns θ and steps used."""
    x = theta.detach().clone()
    for step in range(max_steps):
        g = gradient(problem.loss, x)
        if float(g.norm()) <= tol:
            return x, step
        x = x - lr * g
    return x, max_steps


def run_baseline(
    problem: Problem,
    name: str,
    *,
    budget: int,
    mis: MISResult,
    settings: RRSettings,
    seed: int = 0,
    lr: float | None = None,
    episode_steps: int = 500,
    perturbation: float = 0.1,
) -> BaselineResult:
    """Run baseline ``name`` for ``budget`` steps (see the module docstring).

    Args:
        problem: what to solve.
        name: one of :data:`BASELINES`.
        budget: total steps (Ridge Rider's own step count, for a fair comparison).
        mis: the saddle the ``(S)`` baselines start from.
        settings: Ridge Rider settings (the tree baselines reuse them; ``polish_lr`` is the
            default gradient-descent rate).
        seed: seed of every random choice.
        lr: gradient-descent learning rate (default ``settings.polish_lr``).
        episode_steps: cap on one gradient-descent episode.
        perturbation: standard deviation of the MIS perturbation for ``gd_mis``.
    """
    if name not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {name!r}")
    if name in ("fixed_eigenvectors", "random_ascent"):
        return _tree_baseline(problem, name, budget, mis, settings, seed)
    rate = settings.polish_lr if lr is None else lr
    gen = torch.Generator().manual_seed(seed)
    out = BaselineResult(name)
    while out.steps < budget:
        cap = min(episode_steps, budget - out.steps)
        start, used = _episode_start(problem, name, mis, settings, gen, perturbation, cap)
        theta, steps = gradient_descent(problem, start, rate, max(cap - used, 0))
        out.steps += used + max(steps, 1)
        out.episodes += 1
        out.solution_keys.append(problem.solution_key(theta))
    return out


def _tree_baseline(
    problem: Problem, name: str, budget: int, mis: MISResult, settings: RRSettings, seed: int
) -> BaselineResult:
    """The tree baselines: UpdateRidge off, plus random ascent ridges for ``random_ascent``."""
    changes: dict[str, object] = {"update": "fixed", "max_steps": budget}
    if name == "random_ascent":
        changes["ridge_rule"] = "random_ascent"
    result = run_search(problem, settings.with_(**changes), seed=seed, mis=mis)
    out = BaselineResult(name)
    out.solution_keys = [n.solution_key for n in result.solutions]
    out.steps, out.episodes = result.steps, len(result.solutions)
    return out


def _episode_start(
    problem: Problem,
    name: str,
    mis: MISResult,
    settings: RRSettings,
    gen: torch.Generator,
    perturbation: float,
    cap: int,
) -> tuple[Tensor, int]:
    """Where a gradient-descent episode starts, and the steps spent getting there.

    A random initialisation (``gd_random``), a perturbed MIS (``gd_mis``), or the end of a walk
    from the MIS along a random unit vector while the loss falls (``random_vectors``).
    """
    if name == "gd_random":
        return problem.random_init(gen), 0
    if name == "gd_mis":
        noise = torch.randn(mis.theta.numel(), generator=gen, dtype=mis.theta.dtype)
        return mis.theta + perturbation * noise, 0
    u = torch.randn(mis.theta.numel(), generator=gen, dtype=mis.theta.dtype)
    walk = ride(
        problem.loss,
        mis.theta,
        u / u.norm(),
        0.0,
        settings.with_(update="fixed"),
        max_steps=cap,
    )
    return walk.theta, walk.steps
