"""``coord-game``: random two-player coordination games with symmetric payoff classes.

Like the lever game, both players pick one of ``actions`` actions and are paid the action's
payoff if they pick the same one, 0 otherwise. The actions fall into classes of equal payoff,
given as ``payoff×count`` (``"1.0x3,0.6x1"``; ``x`` or ``×``); the seed shuffles which actions
belong to which class, and, when ``classes`` is empty, also draws the classes (2 to 4 of them,
distinct payoffs in [0.5, 1.0] with two decimals, random sizes).

Zero-shot coordination in such a game: coordinating on a class of ``c`` equivalent actions
without agreeing on labels meets the partner with probability ``1/c``, so the best
label-free score is ``max(payoff / count)`` over the classes (:meth:`CoordGame.best_zero_shot`).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field, ValidationInfo, field_validator

from ridgerider.problems.base import ParamsModel
from ridgerider.problems.lever_game import MAX_LEVERS, LeverGame

__all__ = ["CoordGame", "CoordGameParams", "parse_classes"]


def parse_classes(value: Any) -> Any:
    """Accept ``"1.0x3,0.6x1"`` (or ``×``) as well as a list of ``(payoff, count)`` pairs."""
    if not isinstance(value, str):
        return value
    pairs = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        payoff, sep, count = part.replace("×", "x").partition("x")
        try:
            if not sep:
                raise ValueError
            pairs.append((float(payoff), int(count)))
        except ValueError:
            raise ValueError(
                f"expected payoff x count pairs like 1.0x3,0.6x1, got {part!r}"
            ) from None
    return tuple(pairs)


class CoordGameParams(ParamsModel):
    """Number of actions, their payoff classes and the seed that lays them out."""

    actions: int | None = Field(
        None,
        ge=2,
        le=MAX_LEVERS,
        description="number of actions (default: the sum of the class counts, or 10)",
    )
    classes: tuple[tuple[float, int], ...] = Field(
        (),
        max_length=MAX_LEVERS,
        description="payoff classes as payoff x count, comma-separated, counts summing to "
        "actions (empty: drawn from the seed)",
    )
    seed: int = Field(0, ge=0, le=2**63 - 1, description="shuffles actions (and draws classes)")

    @field_validator("classes", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        return parse_classes(value)

    @field_validator("classes")
    @classmethod
    def _consistent(
        cls, value: tuple[tuple[float, int], ...], info: ValidationInfo
    ) -> tuple[tuple[float, int], ...]:
        if not value:
            return value
        if any(not 0 < r <= 1000 for r, _ in value):
            raise ValueError("every payoff must be in (0, 1000]")
        if any(c < 1 for _, c in value):
            raise ValueError("every count must be >= 1")
        if len({r for r, _ in value}) != len(value):
            raise ValueError("payoffs of different classes must differ (merge equal ones)")
        actions = info.data.get("actions")
        total = sum(c for _, c in value)
        if total < 2 or total > MAX_LEVERS:
            raise ValueError(f"counts must sum to between 2 and {MAX_LEVERS}, got {total}")
        if actions is not None and total != actions:
            raise ValueError(f"counts sum to {total}, but actions is {actions}")
        return value


def _draw_classes(actions: int, generator: torch.Generator) -> tuple[tuple[float, int], ...]:
    """2–4 classes with distinct payoffs in [0.5, 1.0] (two decimals) and random sizes."""
    k = int(torch.randint(2, min(4, actions) + 1, (1,), generator=generator))
    cuts = sorted((torch.randperm(actions - 1, generator=generator)[: k - 1] + 1).tolist())
    counts = [b - a for a, b in zip([0, *cuts], [*cuts, actions], strict=True)]
    payoffs = (torch.randperm(51, generator=generator)[:k] + 50).tolist()
    return tuple((p / 100, c) for p, c in zip(payoffs, counts, strict=True))


class CoordGame(LeverGame):
    """A lever game whose payoff classes are given (or drawn) and whose layout is random."""

    name = "coord-game"
    summary = "random coordination game with symmetric payoff classes (zero-shot coordination)"
    Params = CoordGameParams  # type: ignore[assignment]
    params: CoordGameParams  # type: ignore[assignment]

    def payoff_values(self) -> tuple[float, ...]:
        """Each action's payoff: the classes expanded, then shuffled by the seed."""
        generator = torch.Generator().manual_seed(self.params.seed)
        classes = self.params.classes or _draw_classes(self.params.actions or 10, generator)
        flat = [r for r, c in classes for _ in range(c)]
        order = torch.randperm(len(flat), generator=generator).tolist()
        return tuple(flat[k] for k in order)

    def class_sizes(self) -> dict[float, int]:
        """How many actions each payoff class has."""
        return {r: len(levers) for r, levers in self.classes().items()}

    def best_zero_shot(self) -> tuple[float, float, int]:
        """``(score, payoff, count)`` of the class with the highest ``payoff / count``."""
        r, c = max(self.class_sizes().items(), key=lambda rc: (rc[0] / rc[1], rc[0]))
        return r / c, r, c

    def metrics(self, theta: torch.Tensor) -> dict[str, Any]:
        """The lever game's metrics, plus the payoff of player 1's greedy action."""
        out = super().metrics(theta)
        out["payoff"] = float(self.payoffs[out["levers"][0]])
        return out

    def default_settings(self) -> dict[str, Any]:
        """Every negative ridge (at most one per action), both signs."""
        return {"n_ridges": self.m, "alpha": 1.0, "max_depth": 4, "zero_tol": 1e-6}
