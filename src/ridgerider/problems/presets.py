"""Presets: the paper's experiments with the paper's own settings (``--preset paper-fig2``).

A preset names a problem and holds the parameters and search settings that the paper *states*
for one experiment, and only those; every other setting keeps the problem's default (each is
listed below with its value and why). Explicit options override a preset: ``--set`` its
parameters, ``--setting`` (and ``--max-steps`` ...) its settings.

``paper-fig2`` (paper §4, "RR for Diversity in RL", Fig. 2): ``tree-rl`` with the paper's kind
of tree (``generator="paper"``; the depth is the problem's default 6, the figure uses 4, 6, 8
and 10: ``--set depth=8``). Stated by the paper: exact RR (``method="exact"``), BFS
(``order="bfs"``), the top N = 6 eigenpairs in GetRidges (``n_ridges=6``), both signs of each
(``signs="both"``: GetRidges returns ±e), overlap threshold 0.95 (``overlap_threshold``),
EndRide only on overlap and on lack of progress (``end_on_convex=False``), a backtracking line
search from a large α (``step_rule="backtrack"``), a budget of T = 10⁵ steps
(``max_steps=100000``), no depth limit and no leaf polish (the paper has neither:
``max_depth=None``, ``polish_steps=0``).

``paper-fig3`` (Fig. 3): the same, on trees of depth 12 (``depth=12``) at the same fixed
budget ("the same hyperparameters for RR and the ablations"); the ablations are the settings
``update="fixed"`` (Fixed-EV) and ``ridge_rule="random_ascent"`` (Rand-Ridge+).

``paper-fig6`` ("RR for Zero-Shot Coordination", Fig. 6): ``lever-game`` with the paper's
payoffs (7×1.0, 2×0.8, 1×0.6, the problem's default), exact RR and BFS. The figure shows ridges
0–9, so GetRidges takes all ten (``n_ridges=10``). Its 25 replicates repeated five times are
``ridgerider crossplay lever-game --preset paper-fig6`` (``replicates=25``; the five repeats are
five master seeds, ``benchmarks/crossplay_lever.py``).

Not stated by the paper, so left at the problem's default:

* ``alpha`` (tree-rl 4.0, lever-game 1.0): "a large α" is all the paper says; the problems'
  defaults, which the backtracking search halves as needed.
* ``alpha_min`` 1e-6: "until α gets too small".
* ``zero_tol`` (tree-rl 1e-3, lever-game 1e-6): the paper filters no eigenvalues explicitly;
  curvature above −1e-3 is numerically flat on the trees, and the lever game's two exact zeros
  (softmax shifts) need a small tolerance.
* ``min_progress`` 1e-12 (relative): "if the policy stops improving".
* ``max_ride_steps`` 2000: the paper caps rides only by the budget; the engine's cap is kept
  so one ride cannot spend the whole budget of a tree.
* ``max_nodes`` 1,000,000 in the presets (the API's largest): the paper's only budget is T.
* ``repeat_tol``, ``cluster_tol``, ``one_per_group``, ``grad_tol``: our engine's handling of
  repeated eigenvalues, which the paper does not discuss (defaults of ``RRSettings``).
* The MIS objective's β: the paper "finds the MIS by maximising entropy"; ``tree-rl`` takes
  0.1 on the paper's kind of tree (0.01 left no negative curvature at the MIS of 4 of 10
  depth-6 trees) and 0.01 on the default generator's.
* The tree generator itself: the paper publishes none; ``generator="paper"`` is our reading of
  its Fig. 2 tree (``--set generator=default`` for the project's, on which the paper's Fig. 2
  and Fig. 3 claims reproduce: ``benchmarks/README.md``).
* ``lever-game``'s ``max_depth`` 4: the lever game's ridges end at a pure policy within two
  levels; the paper does not state a depth.
* ``lever-game``'s ``polish_steps`` 300 (``polish_lr`` 3.0): a leaf is finished by gradient
  descent to its lever's payoff, as cross-play finishes every leaf before it scores it; the
  paper shows finished policies but does not say how it finishes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["PRESETS", "Preset", "UnknownPresetError", "get_preset"]

_TREE_PAPER: dict[str, Any] = {
    "method": "exact",
    "order": "bfs",
    "n_ridges": 6,
    "signs": "both",
    "overlap_threshold": 0.95,
    "end_on_convex": False,
    "step_rule": "backtrack",
    "max_steps": 100_000,
    "max_nodes": 1_000_000,
    "max_depth": None,
    "polish_steps": 0,
}


@dataclass(frozen=True)
class Preset:
    """One experiment of the paper: its problem, parameters and stated settings."""

    name: str
    problem: str
    params: dict[str, Any]
    settings: dict[str, Any]
    summary: str
    extra: dict[str, Any] = field(default_factory=dict)
    """Settings of other commands (``replicates`` of ``crossplay``)."""


PRESETS: dict[str, Preset] = {
    "paper-fig2": Preset(
        "paper-fig2",
        "tree-rl",
        {"generator": "paper"},
        dict(_TREE_PAPER),
        "paper Fig. 2: exact RR on the paper's kind of tree, BFS, N=6, both signs, T=1e5",
    ),
    "paper-fig3": Preset(
        "paper-fig3",
        "tree-rl",
        {"generator": "paper", "depth": 12},
        dict(_TREE_PAPER),
        "paper Fig. 3: Fig. 2's settings on trees of depth 12",
    ),
    "paper-fig6": Preset(
        "paper-fig6",
        "lever-game",
        {},
        {"method": "exact", "order": "bfs", "n_ridges": 10},
        "paper Fig. 6: the lever game, exact RR, BFS, all ten ridges; 25 replicates",
        {"replicates": 25},
    ),
}


class UnknownPresetError(LookupError):
    """No preset has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown preset {name!r} (known: {', '.join(sorted(PRESETS))})")
        self.name = name


def get_preset(name: str, problem: str | None = None) -> Preset:
    """The preset ``name``; ``ValueError`` if it is for another problem than ``problem``."""
    try:
        preset = PRESETS[name]
    except KeyError:
        raise UnknownPresetError(name) from None
    if problem is not None and problem != preset.problem:
        raise ValueError(f"preset {name!r} is for {preset.problem}, not {problem}")
    return preset
