"""Synthetic trees for the scaling benchmarks: nodes that compute nothing, jobs on a 2-D root.

``scaling.py`` and ``speculation.py`` time the frontier and the workers, not Ridge Rider: their
branches sleep or spin, and these nodes give them a tree of a known shape. Nothing here is
added to the problem registry.
"""

from __future__ import annotations

import time

import torch

from ridgerider.core.branch import Branch, Node, child_seed
from ridgerider.core.expand import Expansion
from ridgerider.core.ridge import OnStep
from ridgerider.core.settings import RRSettings
from ridgerider.problems import RegisteredProblem
from ridgerider.services import jobs
from ridgerider.services.archive import Archive
from ridgerider.services.frontier.base import Frontier
from ridgerider.services.storage.base import Storage
from ridgerider.services.storage.records import JobSpec

THETA = torch.zeros(2, dtype=torch.float64)


def synthetic(branch: Branch, fanout: int, depth: int | None = None) -> Expansion:
    """``fanout`` children down to ``depth`` (``None``: forever), then leaves.

    Losses fall with depth and vary between nodes, so ``priority`` has an order to follow.
    """
    leaf = depth is not None and branch.depth >= depth
    loss = -float(branch.depth) - (branch.seed % 1000) / 1000.0
    kids = [
        Branch(THETA, THETA, -1.0, (*branch.fingerprint, c), child_seed(branch.seed, c), loss)
        for c in ((i // 2, 1 - 2 * (i % 2)) for i in range(0 if leaf else fanout))
    ]
    node = Node(
        fingerprint=branch.fingerprint,
        theta=THETA,
        eigenvalue=branch.eigenvalue,
        eigenvalue_end=None,
        loss_start=0.0,
        loss=loss,
        steps=1,
        end_reason="convex",
        losses=[loss],
        metrics={},
        spectrum=[],
        n_children=len(kids),
        is_leaf=leaf,
        is_solution=False,
        leaf_reason="no_ridges" if leaf else None,
    )
    return Expansion(node, kids)


def sleep_expand(
    problem: RegisteredProblem,
    settings: RRSettings,
    branch: Branch,
    on_step: OnStep | None = None,
    *,
    s: float,
    fanout: int,
    depth: int | None = None,
) -> Expansion:
    """An expand step that sleeps ``s`` seconds instead of riding, then :func:`synthetic`."""
    time.sleep(s)
    return synthetic(branch, fanout, depth)


def start_job(archive: Archive, order: str = "bfs", max_nodes: int = 10**7) -> int:
    """A running job on a synthetic root (no step or depth budget is ever reached)."""
    return start_on(archive.storage, archive.frontier, order, max_nodes)


def start_on(storage: Storage, frontier: Frontier, order: str, max_nodes: int = 10**7) -> int:
    """:func:`start_job` on a storage and frontier of one's own."""
    settings = RRSettings(order=order, max_nodes=max_nodes, max_steps=10**12, max_depth=10**6)
    spec = JobSpec(
        problem="toy2d",
        params={},
        seed=0,
        settings=settings.to_dict(),
        mis={"loss": 0.0, "grad_norm": 0.0, "negative_eigenvalues": 2},
        lease_s=60.0,
    )
    job = storage.create_job(spec, Branch(THETA, None, None, (), 1, 0.0))
    jobs.start(storage, frontier, job.id)
    return job.id


def tree_nodes(fanout: int, depth: int) -> int:
    """Nodes of the synthetic tree with ``fanout`` children a node down to ``depth``."""
    return sum(fanout**d for d in range(depth + 1))
