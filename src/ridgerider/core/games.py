"""Two-player games: the joint return ``J(θ_a, θ_b)`` and cross-play statistics (paper §3).

A problem that is a two-player cooperative game inherits :class:`TwoPlayerGame` next to its
problem class and implements :meth:`~TwoPlayerGame.joint_return`: player 1 plays from
``θ_a`` and player 2 from ``θ_b``, so ``J(θ, θ)`` is self-play and ``J(θ_i, θ_j)`` for
independently obtained ``θ_i, θ_j`` is cross-play. A game that knows its symmetries (e.g. the
relabellings of equal-payoff actions) can also sample one, as a permutation of θ's entries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "PairStats",
    "TwoPlayerGame",
    "cross_play_matrix",
    "is_two_player",
    "pair_stats",
    "symmetric_cross_play",
]


class TwoPlayerGame(ABC):
    """Optional capability of a problem: it is a cooperative game of two players."""

    @abstractmethod
    def joint_return(self, theta_a: Tensor, theta_b: Tensor) -> Tensor:
        """Expected common payoff when player 1 plays from ``θ_a`` and player 2 from ``θ_b``."""

    def sample_symmetry(self, generator: torch.Generator) -> Tensor | None:
        """A uniformly drawn symmetry of the game as an index permutation ``σ`` of θ.

        Relabelling a policy by the symmetry is ``θ[σ]``; the self-play return is unchanged:
        ``J(θ[σ], θ[σ]) = J(θ, θ)``. ``None`` (the default) means the game declares none.
        """
        return None


def is_two_player(problem: object) -> bool:
    """Whether ``problem`` declares a joint return (cross-play is defined for it)."""
    return isinstance(problem, TwoPlayerGame)


def cross_play_matrix(
    game: TwoPlayerGame, thetas_a: Sequence[Tensor], thetas_b: Sequence[Tensor]
) -> Tensor:
    """``M[i, j] = J(player 1 of thetas_a[i], player 2 of thetas_b[j])`` (float64, detached)."""
    a = torch.stack([t.detach() for t in thetas_a])
    b = torch.stack([t.detach() for t in thetas_b])
    with torch.no_grad():
        try:
            inner = torch.func.vmap(game.joint_return, in_dims=(None, 0))
            return torch.func.vmap(inner, in_dims=(0, None))(a, b).to(torch.float64)
        except (RuntimeError, NotImplementedError, ValueError):
            # A joint return that vmap cannot batch (data-dependent control flow): plain loops.
            rows = [[float(game.joint_return(x, y)) for y in b] for x in a]
            return torch.tensor(rows, dtype=torch.float64)


@dataclass(frozen=True)
class PairStats:
    """Cross-play (off-diagonal) and self-play (diagonal) of a square matrix of returns."""

    xp: float
    xp_std: float
    sp: float
    sp_std: float


def pair_stats(matrix: Tensor) -> PairStats:
    """Mean and population standard deviation of the off-diagonal and diagonal entries.

    With a single run there is no pair, so the cross-play is reported as ``nan``.
    """
    r = matrix.shape[0]
    diag = torch.diagonal(matrix)
    off = matrix[~torch.eye(r, dtype=torch.bool)]
    nan = float("nan")
    return PairStats(
        xp=float(off.mean()) if off.numel() else nan,
        xp_std=float(off.std(correction=0)) if off.numel() else nan,
        sp=float(diag.mean()),
        sp_std=float(diag.std(correction=0)),
    )


def symmetric_cross_play(
    game: TwoPlayerGame,
    thetas: Sequence[Tensor],
    generator: torch.Generator,
    draws: int = 8,
) -> float | None:
    """Cross-play with the partner relabelled by a random symmetry (the Other-Play column).

    The mean over ordered pairs ``i ≠ j`` and ``draws`` symmetries each of
    ``J(θ_i, θ_j[σ])``; ``None`` when the game declares no symmetry or there is one run.
    """
    if len(thetas) < 2:
        return None
    total, count = 0.0, 0
    for _ in range(draws):
        for i, a in enumerate(thetas):
            for j, b in enumerate(thetas):
                if i == j:
                    continue
                sigma = game.sample_symmetry(generator)
                if sigma is None:
                    return None
                total += float(game.joint_return(a.detach(), b.detach()[sigma]))
                count += 1
    return total / count
