"""The problem interface the engine needs: a loss over a flat parameter vector and its metadata.

Problems live in :mod:`ridgerider.problems` (a registry of installed classes); the engine only
sees this abstract class, so it stays free of validation and I/O libraries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor

from ridgerider.core.curvature import dense_hessian, value_and_gradient

__all__ = ["EnvironmentProblem", "Problem", "supports_environments"]


class Problem(ABC):
    """A smooth loss ``L(θ)`` on ``θ ∈ R^n`` plus what Ridge Rider needs around it.

    Subclasses set :attr:`name` and implement :meth:`loss`, :attr:`n_params`, :meth:`metrics`.
    Everything else has a sensible default. Parameters are float64 by default: exact Ridge Rider
    compares eigenvectors across steps and benefits from the precision.
    """

    name: ClassVar[str] = ""
    """Registry name, e.g. ``"tree-rl"``."""
    summary: ClassVar[str] = ""
    """One line shown by ``ridgerider problems``."""
    dtype: ClassVar[torch.dtype] = torch.float64

    mis_beta: float = 0.0
    """Weight of :meth:`invariance` (entropy for RL and games) in the MIS objective."""

    @property
    @abstractmethod
    def n_params(self) -> int:
        """Dimension of θ."""

    @abstractmethod
    def loss(self, theta: Tensor) -> Tensor:
        """Differentiable scalar loss (minus the expected return for RL and games)."""

    @abstractmethod
    def metrics(self, theta: Tensor) -> dict[str, Any]:
        """JSON-serialisable metrics of a parameter vector (shown for nodes and solutions)."""

    def hessian(self, theta: Tensor) -> Tensor:
        """Dense Hessian of :meth:`loss` at ``θ``; override with a closed form when cheaper."""
        return dense_hessian(self.loss, theta)

    def losses(self, thetas: Sequence[Tensor]) -> Tensor:
        """:meth:`loss` at each point, ``[B]``: the trial steps of batched exact RR.

        An override must give, point by point, exactly the bits of ``loss`` (it is only used on
        classes whose :meth:`loss` is the one it was written beside).
        """
        return torch.stack([self.loss(t).detach() for t in thetas])

    def hessians(self, thetas: Sequence[Tensor]) -> Tensor:
        """:meth:`hessian` at each point, stacked (``[B, n, n]``): batched exact RR's Hessians.

        An override (a closed form computed for the whole batch) must give, point by point,
        exactly the bits of :meth:`hessian`; ``core.expand_batched`` only calls it on classes
        whose :meth:`hessian` is the one it was written beside, so a subclass that changes the
        Hessian falls back to this loop.
        """
        return torch.stack([self.hessian(t) for t in thetas])

    def values_and_gradients(self, thetas: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """:meth:`loss` and its autograd gradient at each point: ``[B]`` and ``[B, n]``.

        Batched polish (``core.polish_batched``) calls it; an override must give, point by
        point, exactly the bits of ``core.curvature.value_and_gradient(self.loss, θ)`` (it is
        only used on classes whose :meth:`loss` is the one it was written beside).
        """
        pairs = [value_and_gradient(self.loss, t) for t in thetas]
        return torch.stack([v for v, _ in pairs]), torch.stack([g for _, g in pairs])

    def exact_hvp(self, theta: Tensor) -> Callable[[Tensor], Tensor] | None:
        """A hand-written ``v ↦ H(θ) v`` (``[n]`` or ``[n, b]``), or ``None`` to use autograd.

        Approximate RR and the MIS report use it through ``core.hvp.make_hvp(analytic=...)``
        when it exists; it must equal the autograd Hessian's products.
        """
        return None

    @property
    def n_examples(self) -> int | None:
        """Training examples the loss is the mean over, or ``None`` when it is no such mean.

        A problem that reports a number implements :meth:`minibatch`, which makes
        ``RRSettings.hvp_batch`` (curvature from minibatches, ``core.minibatch``) available.
        """
        return None

    def minibatch(self, indices: Tensor) -> Problem:
        """The problem whose loss is the mean over the training examples ``indices`` only.

        Only curvature uses it (``core.minibatch``); problems with :attr:`n_examples` override
        it, the rest never see it called.
        """
        raise NotImplementedError(f"{type(self).__name__} has no training examples to subsample")

    def at_node(self, key: str) -> Problem:
        """The problem as computations anchored at node ``key`` see it (default: itself).

        ``expand`` rides a branch with ``at_node`` of its parent's key (where GetRidges chose
        the ridge) and branches, polishes and reports with ``at_node`` of its own key. Problems
        whose derivatives are estimated from random samples return a copy whose samples derive
        from the key, so a ride uses the samples its ridge was computed from and a branch
        replays identically on any worker.
        """
        return self

    def mis_start(self) -> Tensor:
        """Starting point of the MIS search (default: the origin, invariant for most problems)."""
        return torch.zeros(self.n_params, dtype=self.dtype)

    def analytic_mis(self) -> Tensor | None:
        """A known maximally invariant saddle, or ``None`` to search for one."""
        return None

    def invariance(self, theta: Tensor) -> Tensor | None:
        """A symmetry-respecting term maximised at the MIS (e.g. policy entropy), or ``None``."""
        return None

    def random_init(self, generator: torch.Generator) -> Tensor:
        """A random starting point for the gradient-descent-from-random-init baseline."""
        return torch.randn(self.n_params, generator=generator, dtype=self.dtype)

    def solution_key(self, theta: Tensor) -> str | None:
        """A label of the solution class θ belongs to (e.g. the leaf a policy reaches)."""
        return None

    def targets(self) -> Sequence[str] | None:
        """The known set of target solution labels (for coverage), or ``None`` if unknown."""
        return None

    def default_settings(self) -> dict[str, Any]:
        """Overrides of :class:`~ridgerider.core.settings.RRSettings` defaults for this problem."""
        return {}


@runtime_checkable
class EnvironmentProblem(Protocol):
    """What ``method="ood"`` needs on top of :class:`Problem`: training environments and a head.

    ``environment_losses(θ)`` returns each training environment's differentiable loss (at least
    two; validation and test data never enter them) and ``head_slice()`` the index range of the
    head ``θ_r`` in θ (the rest is the features ``θ_f``). See ``core.ood``.
    """

    def environment_losses(self, theta: Tensor) -> list[Tensor]:
        """Each training environment's loss at ``θ``."""
        ...

    def head_slice(self) -> slice:
        """``slice(start, stop)`` of the head parameters ``θ_r`` in θ."""
        ...


def supports_environments(problem: object) -> bool:
    """Whether ``problem`` declares training environments and a head (``method="ood"``)."""
    return isinstance(problem, EnvironmentProblem)
