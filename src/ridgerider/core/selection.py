"""The paper's two-step choice: find solutions on training data, pick one on held-out data.

Ridge Rider produces a finite set of solutions from the training loss alone; a problem that holds
data out reports an accuracy on it in every node's metrics (``validation_accuracy``), and the
solution with the highest one is *chosen* (ties: the one found first, so the choice is as
deterministic as the tree). The test data never enter the choice. Problems without held-out data
have no chosen solution.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeVar

__all__ = ["CHOSEN_METRICS", "SELECTION_METRIC", "choose"]

SELECTION_METRIC = "validation_accuracy"
"""The held-out metric solutions are chosen by (higher is better)."""

CHOSEN_METRICS = ("train_accuracy", "validation_accuracy", "test_accuracy")
"""The metrics a report of the chosen solution shows first."""


class _HasMetrics(Protocol):
    @property
    def metrics(self) -> Mapping[str, Any]: ...


T = TypeVar("T", bound=_HasMetrics)


def choose(solutions: Iterable[T]) -> T | None:
    """The solution with the highest :data:`SELECTION_METRIC`; ``None`` if none reports it."""
    best: T | None = None
    best_value = float("-inf")
    for sol in solutions:
        value = sol.metrics.get(SELECTION_METRIC)
        if isinstance(value, int | float) and value > best_value:
            best, best_value = sol, float(value)
    return best
