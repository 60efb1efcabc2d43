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

``paper-mnist`` ("RR for Supervised Learning", Fig. 4 left): approximate RR
(``method="approx"``) with the paper's UpdateRidge (``approx_update="paper"``: gradient steps on
``‖(1/λ)He − e‖²``, one per ride step, ``approx_steps=1``), a fixed step α = 0.00264
(``step_rule="fixed"``, ``alpha``), LR_e = 0.000510 (``approx_lr_e``), Hessian products on
minibatches of 2,236 (``hvp_batch=2236``), one ridge (``n_ridges=1``). The problem is
``digits-mlp`` at ``image_size=28``: MNIST's 784 inputs, so the network is the paper's
784-128-128-10 (118,282 parameters), on scikit-learn's bundled digits resampled to 28×28 (no
download; ``mnist-mlp`` needs the IDX files, ``--preset`` takes one problem). The digits have
1,437 training images, fewer than one of the paper's batches, so there ``hvp_batch=2236`` is the
full batch (``RRSettings.hvp_batch``: a batch at least the training set's size is the full
batch); on MNIST's 60,000 it would be the paper's minibatch.

Stated but not carried: S = 236 (we read it as the seed of the paper's sweep; its random
streams are not ours, so ``--seed`` stays the user's) and LR_λ (its exponent is illegible in
our copy, "4.34e-?"): ``approx_lr_lambda`` keeps the engine's scale-free ¼·λ² (0).
Unstated, chosen here: one ride from the start (``max_depth=1``; Fig. 4 shows one run), the
descent sign only (``signs="descent"``: the start is a seeded initialisation, not a saddle, so
one sign of each ridge climbs), rides that end only at their step cap (``end_on_convex=False``:
the followed direction's ``eᵀHe`` reaches ~0 within ~1,000 steps while the loss keeps falling,
``benchmarks/README.md``), ``max_ride_steps=25000`` (on the 8×8 digits α = 0.005 reached
~98 % test after 12,000–15,000 steps, a distance of 60–75; 25,000 steps of α = 0.00264 travel
66) and no polish (``polish_steps=0``: the figure shows the ride itself).

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
    "paper-mnist": Preset(
        "paper-mnist",
        "digits-mlp",
        {"image_size": 28, "hidden": "128,128"},
        {
            "method": "approx",
            "approx_update": "paper",
            "approx_steps": 1,
            "step_rule": "fixed",
            "alpha": 0.00264,
            "approx_lr_e": 0.000510,
            "approx_lr_lambda": 0.0,
            "hvp_batch": 2236,
            "n_ridges": 1,
            "signs": "descent",
            "end_on_convex": False,
            "max_depth": 1,
            "max_ride_steps": 25_000,
            "polish_steps": 0,
        },
        "paper Fig. 4: approx. RR, the paper's update, one ridge, α=0.00264, LR_e=0.00051, "
        "batch 2236, on the digits at 28x28 (784-128-128-10)",
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
