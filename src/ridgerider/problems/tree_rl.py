"""``tree-rl``: random binary-tree MDPs with a tabular softmax policy (paper §4, Fig. 2).

The agent starts at the root decision node and picks left or right until it reaches a terminal
node, which pays +10 (a *positive* leaf) or −1. The loss is minus the exact expected reward:
``−Σ_leaf r_leaf · Π_{(s, a) on the path} π(a | s)``, with two logits per decision node.

The generator (the paper does not publish its own) draws, for a given ``depth`` and
``tree_seed``: a spine of decision nodes from the root down to depth ``depth − 1`` along a random
path (so the tree has the requested depth); every other child of a decision node above the last
level is a decision node with probability ``branch_prob`` and terminal otherwise; children at
depth ``depth`` are terminal. Each terminal is positive with probability ``positive_prob``; if
none is, one random terminal is made positive. Two terminal siblings never both pay +10: the
choice between them would be a pure symmetry of the loss, and Ridge Rider (by design) finds
one member of each class of equivalent solutions. With ``deep_rewards`` (the default) only
terminals at the full depth can be positive: shallow positive leaves make the uniform policy's
gradient large (a +10 leaf at depth 1 dominates it), so no point near the maximally invariant
policy is close to a saddle and every ridge drifts to that one leaf. With the goals at the
bottom, ‖∇J‖ at the uniform policy is 0.02–0.5 (the small-gradient regime the paper's MIS
needs).

``generator="paper"`` draws the paper's kind of tree instead (Fig. 2, left: six decision nodes
and seven terminal nodes at several depths, three of them positive): the same shape (a spine
to the full depth, decision nodes that end early with probability ``1 − branch_prob``), but every
terminal, at any depth, pays +10 with probability ``positive_prob`` (``deep_rewards`` is not
used). Every tree has a −1 terminal: its deepest decision node has two terminal children, which
never both pay +10. The paper does not publish
its generator; this is the reading of its text and figure that differs least from ours, so the
two can be compared tree by tree (the same ``tree_seed`` gives the same shape).

The MIS minimises ``‖∇J‖² − β·Σ_s H(π_s)`` with ``β = 0.01`` (L-BFGS from the uniform policy):
J has no interior stationary point on these trees (a decision between a −1 and a +10 terminal
always has a non-zero gradient), so the MIS is an approximate saddle; the report gives its
gradient norm. On the paper's kind of tree β is 0.1: with 0.01 a +10 terminal near the root
pulls the MIS to an almost pure policy, and on 4 of 10 depth-6 trees (seeds 0–9) it had no
eigenvalue below −1e-3 left, so the search ended at the root; with 0.1 every one of those trees
and of ten depth-10 trees kept 1–9 negative eigenvalues at ‖∇J‖ 0.02–0.13.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor

from ridgerider.core.aligned import aligned_rows
from ridgerider.problems.base import ParamsModel, RegisteredProblem

__all__ = ["Tree", "TreeRL", "TreeRLParams", "generate_tree"]

POSITIVE_REWARD = 10.0
NEGATIVE_REWARD = -1.0


class TreeRLParams(ParamsModel):
    """Shape of the random tree."""

    depth: int = Field(6, ge=1, le=16, description="depth of the deepest terminal node")
    tree_seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the tree generator")
    positive_prob: float = Field(
        0.5, gt=0, le=1, description="probability that a terminal node pays +10"
    )
    branch_prob: float = Field(
        0.5, ge=0, le=1, description="probability that an off-spine child is a decision node"
    )
    deep_rewards: bool = Field(
        True, description="only terminals at the full depth can pay +10 (shallower ones pay -1)"
    )
    generator: Literal["default", "paper"] = Field(
        "default",
        description="paper: +10 terminals at every depth, as in the paper's Fig. 2 "
        "(deep_rewards is not used)",
    )


@dataclass(frozen=True)
class Tree:
    """A generated tree: decision nodes, terminals and how they connect."""

    children: list[tuple[tuple[str, int], tuple[str, int]]]
    """Per decision node: (left child, right child), each ``("d", index)`` or ``("t", index)``."""
    rewards: list[float]
    """Per terminal node."""
    paths: list[list[tuple[int, int]]]
    """Per terminal node: the (decision node, action) pairs from the root."""


def generate_tree(
    depth: int,
    seed: int,
    positive_prob: float,
    branch_prob: float,
    deep_rewards: bool = False,
    generator: str = "default",
) -> Tree:
    """Draw a tree (see the module docstring); a pure function of its arguments."""
    if generator == "paper":
        deep_rewards = False
    rng = random.Random(seed)
    spine = [rng.randrange(2) for _ in range(depth - 1)]
    children: list[tuple[tuple[str, int], tuple[str, int]]] = []
    rewards: list[float] = []
    paths: list[list[tuple[int, int]]] = []

    def build(level: int, path: list[tuple[int, int]], on_spine: bool) -> tuple[str, int]:
        node = len(children)
        children.append((("t", -1), ("t", -1)))
        kids: list[tuple[str, int]] = []
        for action in (0, 1):
            child_path = [*path, (node, action)]
            spine_child = on_spine and level < depth - 1 and spine[level] == action
            decide = level < depth - 1 and (spine_child or rng.random() < branch_prob)
            if decide:
                kids.append(build(level + 1, child_path, spine_child))
            else:
                kids.append(("t", len(rewards)))
                positive = rng.random() < positive_prob
                if deep_rewards and level < depth - 1:
                    positive = False
                rewards.append(POSITIVE_REWARD if positive else NEGATIVE_REWARD)
                paths.append(child_path)
        if kids[0][0] == kids[1][0] == "t" and rewards[kids[0][1]] == rewards[kids[1][1]] > 0:
            # Two +10 siblings make the choice between them a pure symmetry (the loss is
            # invariant to it): one solution class, not two. Keep the leaves distinguishable.
            rewards[kids[1][1]] = NEGATIVE_REWARD
        children[node] = (kids[0], kids[1])
        return ("d", node)

    build(0, [], True)
    if POSITIVE_REWARD not in rewards:
        deepest = [i for i, p in enumerate(paths) if len(p) == depth] if deep_rewards else []
        rewards[rng.choice(deepest or list(range(len(rewards))))] = POSITIVE_REWARD
    return Tree(children, rewards, paths)


class TreeRL(RegisteredProblem):
    """Tabular softmax policy on a random binary tree; exact expected reward."""

    name = "tree-rl"
    summary = "random binary-tree MDP, tabular softmax policy, rewards -1/+10 (paper Fig. 2)"
    Params = TreeRLParams
    params: TreeRLParams
    mis_beta = 1e-2
    paper_mis_beta = 0.1
    """β of the MIS on the paper's kind of tree (see the module docstring)."""

    def __init__(self, params: TreeRLParams) -> None:
        super().__init__(params)
        if params.generator == "paper":
            self.mis_beta = self.paper_mis_beta
        self.tree = generate_tree(
            params.depth,
            params.tree_seed,
            params.positive_prob,
            params.branch_prob,
            params.deep_rewards,
            params.generator,
        )
        self.n_decisions = len(self.tree.children)
        n_leaves = len(self.tree.rewards)
        incidence = torch.zeros(n_leaves, 2 * self.n_decisions, dtype=self.dtype)
        for leaf, path in enumerate(self.tree.paths):
            for node, action in path:
                incidence[leaf, 2 * node + action] = 1.0
        self._incidence = incidence
        self._rewards = torch.tensor(self.tree.rewards, dtype=self.dtype)
        # Where each entry of M·D comes from in D's blocks padded with a zero row (_path_rows).
        taken = incidence.reshape(n_leaves, self.n_decisions, 2)
        action = torch.where(taken.sum(dim=2) > 0, taken.argmax(dim=2), 2)  # 2: not passed
        node = torch.arange(self.n_decisions)
        self._path_index = ((node * 3 + action)[:, :, None] * 2 + torch.arange(2)).reshape(-1)

    @property
    def n_params(self) -> int:
        """Two logits per decision node."""
        return 2 * self.n_decisions

    def log_policy(self, theta: Tensor) -> Tensor:
        """``log π(a | s)`` for every (s, a), flattened like θ."""
        return torch.log_softmax(theta.reshape(-1, 2), dim=1).reshape(-1)

    def leaf_probabilities(self, theta: Tensor) -> Tensor:
        """Probability of reaching each terminal node."""
        return torch.exp(self._incidence @ self.log_policy(theta))

    def loss(self, theta: Tensor) -> Tensor:
        """Minus the expected reward."""
        return -(self._rewards * self.leaf_probabilities(theta)).sum()

    def losses(self, thetas: Sequence[Tensor]) -> Tensor:
        """:meth:`loss` at every point, bit for bit.

        The log-softmax, ``exp``, products and each row's sum run on the whole batch; the
        matrix-vector product ``M·log π`` (BLAS) per point on rows laid out as fresh vectors.
        """
        x = torch.stack([t.detach() for t in thetas])
        logp = torch.log_softmax(x.reshape(len(thetas), -1, 2), dim=2).flatten(1)
        probs = torch.exp(torch.stack([self._incidence @ v for v in aligned_rows(logp)]))
        return -(self._rewards * probs).sum(dim=1)

    def hessian(self, theta: Tensor) -> Tensor:
        """Closed-form Hessian of the loss (about 20× faster than autograd here).

        With ``u = M·log π`` (log-probability of each leaf), ``w = r ⊙ exp(u)`` and the per-node
        softmax Jacobian ``D``, ``∇²J = AᵀWA − Σ_s c_s (diag π_s − π_s π_sᵀ)`` where ``A = M·D``,
        ``W = diag(w)`` and ``c_s`` sums ``Mᵀw`` over node s's two actions. The loss is ``−J``.
        """
        x = theta.detach().reshape(-1, 2)
        pi = torch.softmax(x, dim=1)
        logp = torch.log_softmax(x, dim=1).reshape(-1)
        w = self._rewards * torch.exp(self._incidence @ logp)
        cov = torch.diag_embed(pi) - pi[:, :, None] * pi[:, None, :]  # [S, 2, 2]
        a = self._path_rows(pi[None])[0]
        c = (self._incidence.T @ w).reshape(-1, 2).sum(dim=1)  # [S]
        h_j = a.T @ (w[:, None] * a)
        self._minus_blocks(h_j[None], (c[:, None, None] * cov)[None])
        return -0.5 * (h_j + h_j.T)

    def hessians(self, thetas: Sequence[Tensor]) -> Tensor:
        """:meth:`hessian` at every point, bit for bit, with the elementwise work batched.

        Softmaxes, ``A = M·D`` (:meth:`_path_rows`), products and differences of entries run on
        the whole batch; the matrix products and sums (``@``, ``sum``: BLAS calls and
        reductions) run point by point on rows laid out like :meth:`hessian`'s fresh tensors
        (``core.aligned``).
        """
        n = len(thetas)
        x = torch.stack([t.detach() for t in thetas]).reshape(n, -1, 2)
        pi = torch.softmax(x, dim=2)
        logp = torch.log_softmax(x, dim=2).reshape(n, -1)
        w = self._rewards * torch.exp(
            torch.stack([self._incidence @ v for v in aligned_rows(logp)])
        )
        cov = torch.diag_embed(pi) - pi[:, :, :, None] * pi[:, :, None, :]  # [B, S, 2, 2]
        a = self._path_rows(pi)
        h_j, c = [], []
        for ab, wab, wb in zip(
            aligned_rows(a), aligned_rows(w[:, :, None] * a), aligned_rows(w), strict=True
        ):
            h_j.append(ab.T @ wab)
            c.append((self._incidence.T @ wb).reshape(-1, 2).sum(dim=1))
        h = torch.stack(h_j)
        self._minus_blocks(h, torch.stack(c)[:, :, None, None] * cov)
        return -0.5 * (h + h.mT)

    def _path_rows(self, pi: Tensor) -> Tensor:
        """``A = M·D`` at every point (``pi``: ``[B, S, 2]``): ``[B, leaves, 2S]``.

        ``D``, the derivative of ``log π`` (``∂ log π_{s,a} / ∂θ_{s,b} = δ_ab − π_{s,b}``), is
        block diagonal, and a leaf's path takes one action at a node it passes, so every entry
        of ``A`` is one entry of ``D`` or zero: gathered, not multiplied. The same bits as the
        product ``M·D``, a sum of that entry and zero products (``D``'s entries are differences
        ``δ − π``, so none is ``-0.0``, and the sum's zeros are ``+0.0`` as the padding's).
        """
        n, nodes = pi.shape[0], self.n_decisions
        jac = torch.eye(2, dtype=pi.dtype) - pi[:, :, None, :]  # [B, S, 2(a), 2(b)]
        padded = torch.cat([jac, torch.zeros(n, nodes, 1, 2, dtype=pi.dtype)], dim=2)
        rows = padded.reshape(n, -1).index_select(1, self._path_index)
        return rows.reshape(n, -1, self.n_params)

    def _minus_blocks(self, h: Tensor, blocks: Tensor) -> None:
        """``h[b] −= block_diag(blocks[b])`` in place (``blocks``: ``[B, S, 2, 2]``).

        Only the diagonal blocks change: the entries of ``h − block_diag(…)`` off them are
        ``x − 0 = x``.
        """
        diagonal = h.view(h.shape[0], self.n_decisions, 2, self.n_decisions, 2)
        diagonal.diagonal(dim1=1, dim2=3).sub_(blocks.permute(0, 2, 3, 1))

    def values_and_gradients(self, thetas: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """The loss and its autograd gradient at every point, bit for bit.

        Autograd's backward of :meth:`loss`, written out: entrywise steps and the log-softmax
        (forward and backward, row by row) batched, the two matrix-vector products per point on
        rows laid out as fresh vectors (``core.aligned``), as autograd computes them (``M·logπ``,
        then ``Mᵀ·g``).
        """
        x = torch.stack([t.detach() for t in thetas]).reshape(len(thetas), -1, 2)
        logp = torch.log_softmax(x, dim=2)
        probs = torch.exp(torch.stack([self._incidence @ v for v in aligned_rows(logp.flatten(1))]))
        values = -(self._rewards * probs).sum(dim=1)
        g_u = (torch.full_like(probs, -1.0) * self._rewards) * probs
        g_logp = torch.stack([self._incidence.t().mv(g) for g in aligned_rows(g_u)])
        g_x = torch._log_softmax_backward_data(g_logp.reshape(x.shape), logp, 2, x.dtype)
        return values, g_x.reshape(len(thetas), -1)

    def invariance(self, theta: Tensor) -> Tensor:
        """Sum of the policy's entropies over decision nodes."""
        logp = self.log_policy(theta)
        return -(logp.exp() * logp).sum()

    def greedy_leaf(self, theta: Tensor) -> int:
        """The terminal node the greedy policy reaches."""
        logits = theta.reshape(-1, 2)
        kind, idx = "d", 0
        while kind == "d":
            action = int(logits[idx, 1] > logits[idx, 0])
            kind, idx = self.tree.children[idx][action]
        return idx

    def metrics(self, theta: Tensor) -> dict[str, Any]:
        """The greedy policy's leaf and reward, and the expected reward."""
        leaf = self.greedy_leaf(theta)
        return {
            "leaf": leaf,
            "reward": self.tree.rewards[leaf],
            "expected_reward": float(-self.loss(theta)),
        }

    def solution_key(self, theta: Tensor) -> str:
        """The greedy leaf, as text."""
        return str(self.greedy_leaf(theta))

    def targets(self) -> list[str]:
        """The positive leaves."""
        return [str(i) for i, r in enumerate(self.tree.rewards) if r > 0]

    def default_settings(self) -> dict[str, Any]:
        """The paper's tree experiment (N = 6, overlap 0.95, BFS, no convexity end), plus ours.

        Rides end only on overlap or lack of progress (as in the paper's tree experiment);
        curvature above −1e-3 counts as flat. Ours, for the paper's step budget (T = 10⁵):

        * ``signs="descent"``: the MIS is not a stationary point (‖∇J‖ 0.02–0.5), so away from
          an exact saddle one sign of each ridge climbs to first order and its ride stalls;
          both signs are still kept where ``|⟨∇L, e⟩| ≤ grad_tol``.
        * ``max_depth=3`` and a 50-step gradient-descent polish at leaves (lr 1): a ride
          settles one or a few decisions and ends where the loss stops improving, with the
          policy still mixed, so unbounded BFS (six children per node) needs thousands of
          nodes before any branch runs out of negative curvature. Three levels of branching
          give a few hundred diverse ride ends; each is finished by gradient descent, as the
          paper's Fig. 1 finishes its leaves, and the polish steps count in the step budget.
        """
        return {
            "n_ridges": 6,
            "overlap_threshold": 0.95,
            "end_on_convex": False,
            "alpha": 4.0,
            "zero_tol": 1e-3,
            "signs": "descent",
            "max_depth": 3,
            "polish_steps": 50,
            "polish_lr": 1.0,
        }
