"""The two-step choice: the solution with the highest held-out accuracy, never the test's."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ridgerider.core.selection import choose


@dataclass
class Sol:
    name: str
    metrics: dict[str, Any] = field(default_factory=dict)


def test_the_highest_validation_accuracy_wins_and_test_accuracy_is_ignored() -> None:
    sols = [
        Sol("a", {"validation_accuracy": 0.6, "test_accuracy": 0.9}),
        Sol("b", {"validation_accuracy": 0.8, "test_accuracy": 0.1}),
        Sol("c", {"validation_accuracy": 0.7, "test_accuracy": 0.95}),
    ]
    chosen = choose(sols)
    assert chosen is not None and chosen.name == "b"


def test_ties_go_to_the_first_found_and_missing_values_are_skipped() -> None:
    sols = [
        Sol("none", {"validation_accuracy": None}),
        Sol("nan", {"validation_accuracy": float("nan")}),
        Sol("first", {"validation_accuracy": 0.5}),
        Sol("second", {"validation_accuracy": 0.5}),
        Sol("no-metric", {"test_accuracy": 1.0}),
    ]
    chosen = choose(sols)
    assert chosen is not None and chosen.name == "first"


def test_nothing_is_chosen_without_held_out_data() -> None:
    assert choose([Sol("a", {"test_accuracy": 1.0, "loss": 0.1})]) is None
    assert choose([]) is None
