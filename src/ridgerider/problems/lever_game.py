"""``lever-game``: the two-player lever coordination game (paper §4, zero-shot coordination).

Each player picks one of m levers with a softmax policy; both get ``r_a`` if they pick the same
lever ``a`` and 0 otherwise. θ = (logits of player 1, logits of player 2), and the loss is minus
the expected common payoff ``J = Σ_a r_a·p_a·q_a``. Default payoffs: seven levers paying 1.0,
two paying 0.8 and one (index 9) paying 0.6.

The MIS is known in closed form: at ``p_a = q_a ∝ 1/r_a`` every lever gives the same expected
payoff to each player, so ``∇J = 0`` exactly, and the policy is invariant under every relabelling
of equal-payoff levers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from pydantic import Field, field_validator
from torch import Tensor

from ridgerider.core.aligned import aligned_rows
from ridgerider.core.games import TwoPlayerGame
from ridgerider.problems.base import ParamsModel, RegisteredProblem

__all__ = ["LeverGame", "LeverGameParams", "parse_payoffs"]

DEFAULT_PAYOFFS = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.8, 0.6)
MAX_LEVERS = 256


def parse_payoffs(value: Any) -> Any:
    """Accept ``"1,1,0.8"`` as well as a list of numbers."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        try:
            return tuple(float(p) for p in parts)
        except ValueError:
            raise ValueError("must be comma-separated numbers, e.g. 1,1,0.8") from None
    return value


class LeverGameParams(ParamsModel):
    """The payoff of each lever."""

    payoffs: tuple[float, ...] = Field(
        DEFAULT_PAYOFFS,
        min_length=2,
        max_length=MAX_LEVERS,
        description="payoff per lever, comma-separated (each in (0, 1000])",
    )

    @field_validator("payoffs", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        return parse_payoffs(value)

    @field_validator("payoffs")
    @classmethod
    def _positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < r <= 1000 for r in value):
            raise ValueError("every payoff must be in (0, 1000]")
        return value


class LeverGame(RegisteredProblem, TwoPlayerGame):
    """Two softmax players coordinating on levers with symmetric payoff classes.

    Its symmetries are the relabellings of levers within a payoff class, applied to both
    players at once (:meth:`sample_symmetry`).
    """

    name = "lever-game"
    summary = "two-player lever coordination game (zero-shot coordination, paper Fig. 6)"
    Params = LeverGameParams
    params: LeverGameParams

    def __init__(self, params: LeverGameParams) -> None:
        super().__init__(params)
        values = self.payoff_values()
        self.payoffs = torch.tensor(values, dtype=self.dtype)
        self.m = len(values)

    def payoff_values(self) -> tuple[float, ...]:
        """The payoff of each lever, in lever order (subclasses derive it from their params)."""
        return self.params.payoffs

    @property
    def n_params(self) -> int:
        """Logits of both players."""
        return 2 * self.m

    def policies(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """Player 1's and player 2's lever probabilities."""
        return torch.softmax(theta[: self.m], 0), torch.softmax(theta[self.m :], 0)

    def joint_return(self, theta_a: Tensor, theta_b: Tensor) -> Tensor:
        """Expected payoff when player 1 plays from ``theta_a`` and player 2 from ``theta_b``."""
        p = torch.softmax(theta_a[: self.m], 0)
        q = torch.softmax(theta_b[self.m :], 0)
        return (self.payoffs * p * q).sum()

    def classes(self) -> dict[float, list[int]]:
        """The levers of each payoff class, by payoff (levers ascending)."""
        out: dict[float, list[int]] = {}
        for lever, r in enumerate(self.payoff_values()):
            out.setdefault(r, []).append(lever)
        return out

    def sample_symmetry(self, generator: torch.Generator) -> Tensor:
        """A random relabelling of levers within each payoff class, the same for both players."""
        sigma = torch.arange(self.m)
        for levers in self.classes().values():
            idx = torch.tensor(levers)
            sigma[idx] = idx[torch.randperm(len(levers), generator=generator)]
        return torch.cat([sigma, sigma + self.m])

    def loss(self, theta: Tensor) -> Tensor:
        """Minus the expected self-play payoff."""
        return -self.joint_return(theta, theta)

    def losses(self, thetas: Sequence[Tensor]) -> Tensor:
        """:meth:`loss` at every point, bit for bit.

        Softmaxes, products and each row's sum (a row's reduction, its own) run on the whole
        batch.
        """
        x = torch.stack([t.detach() for t in thetas])
        p, q = torch.softmax(x[:, : self.m], 1), torch.softmax(x[:, self.m :], 1)
        return -(self.payoffs * p * q).sum(dim=1)

    def hessian(self, theta: Tensor) -> Tensor:
        """Closed-form Hessian of the loss (the autograd one costs ~50× more here).

        For ``J = pᵀRq`` with softmax policies, the cross block is ``D_p R D_q``
        (``D = diag(π) − ππᵀ``) and a diagonal block, with ``w = Rq``, ``u = w ⊙ p`` and
        ``s = wᵀp``, is ``diag(u) − upᵀ − puᵀ + 2s·ppᵀ − s·diag(p)`` (likewise for q).
        """
        p, q = self.policies(theta.detach())
        r = self.payoffs

        def jac(pi: Tensor) -> Tensor:
            return torch.diag(pi) - torch.outer(pi, pi)

        def own(pi: Tensor, w: Tensor) -> Tensor:
            u = w * pi
            s = float(w @ pi)
            return (
                torch.diag(u)
                - torch.outer(u, pi)
                - torch.outer(pi, u)
                + 2 * s * torch.outer(pi, pi)
                - s * torch.diag(pi)
            )

        cross = jac(p) @ torch.diag(r) @ jac(q)
        h = torch.cat(
            [torch.cat([own(p, r * q), cross], 1), torch.cat([cross.T, own(q, r * p)], 1)], 0
        )
        return -0.5 * (h + h.T)

    def hessians(self, thetas: Sequence[Tensor]) -> Tensor:
        """:meth:`hessian` at every point, bit for bit, with the elementwise work batched.

        Products, sums and differences of entries are computed for the whole batch (one IEEE
        operation per entry, as :meth:`hessian` does them); the dot products and matrix products
        (BLAS calls, whose rounding depends on how they are blocked) run point by point on
        rows laid out like :meth:`hessian`'s fresh tensors (``core.aligned``).
        """
        x = torch.stack([t.detach() for t in thetas])
        p, q = torch.softmax(x[:, : self.m], 1), torch.softmax(x[:, self.m :], 1)
        r = self.payoffs

        def jac(pi: Tensor) -> Tensor:
            return torch.diag_embed(pi) - pi[:, :, None] * pi[:, None, :]

        def own(pi: Tensor, w: Tensor) -> Tensor:
            u = w * pi
            s = torch.stack([a @ b for a, b in zip(*map(aligned_rows, (w, pi)), strict=True)])
            s, pp = s[:, None, None], pi[:, :, None] * pi[:, None, :]
            return (
                torch.diag_embed(u)
                - u[:, :, None] * pi[:, None, :]
                - pi[:, :, None] * u[:, None, :]
                + 2 * s * pp
                - s * torch.diag_embed(pi)
            )

        jp, jq, dr = jac(p), jac(q), torch.diag(r)
        rows = zip(aligned_rows(jp), aligned_rows(jq), strict=True)
        cross = torch.stack([a @ dr @ b for a, b in rows])
        h = torch.cat(
            [torch.cat([own(p, r * q), cross], 2), torch.cat([cross.mT, own(q, r * p)], 2)], 1
        )
        return -0.5 * (h + h.mT)

    def values_and_gradients(self, thetas: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """The loss and its autograd gradient at every point, bit for bit, batched.

        Autograd's backward of :meth:`loss`, written out: every step is entrywise or a softmax
        (or its backward) along the last dimension, which runs row by row; the two slices'
        gradients are summed into zeros as autograd accumulates them (``x + 0``).
        """
        x = torch.stack([t.detach() for t in thetas])
        p, q = torch.softmax(x[:, : self.m], 1), torch.softmax(x[:, self.m :], 1)
        t1 = self.payoffs * p
        values = -(t1 * q).sum(dim=1)
        g_t2 = torch.full_like(q, -1.0)
        g_p = (g_t2 * q) * self.payoffs
        g_a = torch._softmax_backward_data(g_p, p, 1, x.dtype)
        g_b = torch._softmax_backward_data(g_t2 * t1, q, 1, x.dtype)
        first, second = torch.zeros_like(x), torch.zeros_like(x)
        first[:, : self.m], second[:, self.m :] = g_a, g_b
        return values, first + second

    def analytic_mis(self) -> Tensor:
        """Logits of ``p ∝ 1/r`` for both players (centred, so the softmax shifts are zero)."""
        logits = -torch.log(self.payoffs)
        logits = logits - logits.mean()
        return torch.cat([logits, logits])

    def invariance(self, theta: Tensor) -> Tensor:
        """Sum of both players' policy entropies."""
        p, q = self.policies(theta)
        return -(p * p.log()).sum() - (q * q.log()).sum()

    def metrics(self, theta: Tensor) -> dict[str, Any]:
        """Greedy levers, expected self-play return and both policies."""
        p, q = self.policies(theta)
        return {
            "levers": [int(p.argmax()), int(q.argmax())],
            "return": float(self.joint_return(theta, theta)),
            "policy_1": [round(float(v), 6) for v in p],
            "policy_2": [round(float(v), 6) for v in q],
        }

    def solution_key(self, theta: Tensor) -> str:
        """``"a/b"``: the two players' greedy levers."""
        p, q = self.policies(theta)
        return f"{int(p.argmax())}/{int(q.argmax())}"

    def default_settings(self) -> dict[str, Any]:
        """Every negative ridge of the default game (9 of them), both signs; leaves finished.

        A ride ends where its ridge stops descending, usually short of a pure policy (self-play
        returns 0.37–0.67 on the default payoffs); 300 gradient steps of size 3 (the step of
        cross-play's finish, for payoffs of order 1) take every leaf to its lever's payoff
        (1.0, 0.8 or 0.6 to two decimals), as the paper's Fig. 1 finishes its leaves.
        """
        return {
            "n_ridges": 10,
            "alpha": 1.0,
            "max_depth": 4,
            "zero_tol": 1e-6,
            "polish_steps": 300,
            "polish_lr": 3.0,
        }
