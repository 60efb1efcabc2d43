"""The problem registry: installed problems come from entry points of group ``ridgerider.problems``.

A job names a problem; the name is looked up here and nowhere else, so a request can never make
the process import or evaluate arbitrary code. Third-party packages add problems by declaring an
entry point, e.g. ``[project.entry-points."ridgerider.problems"] my-game = "pkg.mod:MyGame"``.
The built-in problems are also registered directly, so a source checkout works without
installation metadata.
"""

from __future__ import annotations

import warnings
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from ridgerider.problems.base import ParamError, RegisteredProblem
from ridgerider.problems.colored import ColoredDigits, ColoredMnist
from ridgerider.problems.coord_game import CoordGame
from ridgerider.problems.digits import DigitsMLP
from ridgerider.problems.gym_policy import GymPolicy
from ridgerider.problems.gym_tabular import GymTabular
from ridgerider.problems.lever_game import LeverGame
from ridgerider.problems.mnist import MnistMLP
from ridgerider.problems.toy2d import Toy2D
from ridgerider.problems.tree_rl import TreeRL

__all__ = ["ENTRY_POINT_GROUP", "UnknownProblemError", "available", "create", "get"]

ENTRY_POINT_GROUP = "ridgerider.problems"
_BUILTIN: tuple[type[RegisteredProblem], ...] = (
    Toy2D,
    TreeRL,
    LeverGame,
    CoordGame,
    DigitsMLP,
    MnistMLP,
    ColoredDigits,
    ColoredMnist,
    GymTabular,
    GymPolicy,
)


class UnknownProblemError(KeyError):
    """No installed problem has this name."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return f"unknown problem {self.name!r} (installed: {', '.join(self.known)})"


@cache
def available() -> dict[str, type[RegisteredProblem]]:
    """Every installed problem by name (built-ins first, then entry points)."""
    found: dict[str, type[RegisteredProblem]] = {cls.name: cls for cls in _BUILTIN}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            continue
        cls = ep.load()
        if isinstance(cls, type) and issubclass(cls, RegisteredProblem):
            if cls.name != ep.name:  # a job stores ``problem.name``: it must find the class again
                warnings.warn(
                    f"problem entry point {ep.name!r} names a class called {cls.name!r}: skipped",
                    stacklevel=2,
                )
                continue
            found[ep.name] = cls
    return found


def get(name: str) -> type[RegisteredProblem]:
    """The problem class registered as ``name``; :class:`UnknownProblemError` otherwise."""
    problems = available()
    if name not in problems:
        raise UnknownProblemError(name, sorted(problems))
    return problems[name]


def create(name: str, params: dict[str, Any] | None = None) -> RegisteredProblem:
    """Build a problem from its name and raw parameters (raises ``ParamError`` when invalid)."""
    return get(name).from_params(params)


__all__ += ["ParamError"]
