"""Jobs and expansions without compute: trees of a given shape, for the frontier's own tests."""

from __future__ import annotations

import math

import torch

from ridgerider.core.branch import Branch, Node, child_seed
from ridgerider.core.expand import Expansion
from ridgerider.core.frontier import MemoryFrontier as CoreFrontier
from ridgerider.core.settings import RRSettings
from ridgerider.services.frontier.base import Frontier, Lease
from ridgerider.services.storage.records import JobSpec

THETA = torch.zeros(2, dtype=torch.float64)
MIS = {
    "loss": 0.0,
    "grad_norm": 0.0,
    "negative_eigenvalues": 2,
    "method": "analytic",
    "iterations": 0,
    "spectrum": [],
}


def submit(
    frontier: Frontier,
    *,
    order: str = "bfs",
    seed: int = 0,
    lease_s: float = 30.0,
    max_attempts: int = 3,
    wall_time_s: float | None = None,
    accelerator: str = "cpu",
    **settings: int,
) -> int:
    """Store and start a job whose root is a 2-parameter zero branch."""
    spec = JobSpec(
        problem="toy2d",
        params={},
        seed=seed,
        settings=RRSettings(order=order, **settings).to_dict(),  # type: ignore[arg-type]
        mis=MIS,
        lease_s=lease_s,
        max_attempts=max_attempts,
        wall_time_s=wall_time_s,
        accelerator=accelerator,
    )
    job = frontier.storage.create_job(spec, Branch(THETA, None, None, (), seed, 0.0))
    assert frontier.storage.transition(job.id, "running")
    frontier.advance(job.id)
    return job.id


def expansion(
    branch: Branch,
    fanout: int = 2,
    depth: int = 3,
    steps: int = 1,
    loss: float | None = None,
    solution: bool = True,
) -> Expansion:
    """The node of ``branch`` with ``fanout`` children until ``depth`` (then a solution leaf)."""
    leaf = branch.depth >= depth
    # Ties across families on purpose: priority must break them by push order.
    end_loss = -(len(branch.key) % 3) - 0.5 * branch.depth if loss is None else loss
    kids = (
        []
        if leaf
        else [
            Branch(
                THETA,
                THETA + 1,
                -1.0,
                (*branch.fingerprint, (i // 2, 1 - 2 * (i % 2))),
                child_seed(branch.seed, (i // 2, 1 - 2 * (i % 2))),
                end_loss,
            )
            for i in range(fanout)
        ]
    )
    node = Node(
        fingerprint=branch.fingerprint,
        theta=THETA,
        eigenvalue=branch.eigenvalue,
        eigenvalue_end=None,
        loss_start=branch.loss or 0.0,
        loss=end_loss,
        steps=0 if branch.direction is None else steps,
        end_reason="convex",
        losses=[end_loss],
        metrics={"depth": branch.depth},
        spectrum=[],
        n_children=len(kids),
        is_leaf=leaf,
        is_solution=leaf and solution,
        leaf_reason="no_ridges" if leaf else None,
        solution_key=branch.key if leaf and solution else None,
    )
    return Expansion(node, kids)


ODD_LOSSES = [math.nan, math.inf, -math.inf, None, 0.0, -0.0, 1.5, -2.0, 1.5]


def odd_losses(branch: Branch, **shape: int) -> Expansion:
    """:func:`expansion` whose children's losses mix NaN, infinities, None, signed zeros, ties."""
    exp = expansion(branch, **shape)
    kids = [
        Branch(
            k.theta,
            k.direction,
            k.eigenvalue,
            k.fingerprint,
            child_seed(branch.seed, k.fingerprint[-1]),
            ODD_LOSSES[(len(k.key) * 7 + i) % len(ODD_LOSSES)],
        )
        for i, k in enumerate(exp.children)
    ]
    return Expansion(exp.node, kids)


def drain(
    frontier: Frontier, job_id: int, worker: str = "w", k: int = 1, **shape: int
) -> list[str]:
    """Claim and complete until nothing is claimable; the keys in completion order."""
    keys: list[str] = []
    while True:
        leases: list[Lease] = frontier.claim(worker, k, job_id=job_id)
        if not leases:
            return keys
        for lease in leases:
            assert frontier.complete(lease, expansion(lease.branch, **shape))
            keys.append(lease.branch.key)


def tree_keys(frontier: Frontier, job_id: int) -> list[str]:
    """The finished tree, in rank order."""
    return [n.key for n in frontier.storage.iter_nodes(job_id)]


def reference(
    order: str, seed: int = 0, max_nodes: int = 10**6, max_steps: int = 10**9, **shape: int
) -> list[str]:
    """The keys ``core.run_search``'s loop expands on the same synthetic tree and budgets."""
    fr = CoreFrontier(order, seed)
    fr.push([Branch(THETA, None, None, (), seed, 0.0)])
    keys, steps = [], 0
    while len(fr):
        if len(keys) >= max_nodes or (steps >= max_steps and keys):
            break
        branch = fr.pop()
        exp = expansion(branch, **shape)
        steps += exp.node.steps
        keys.append(branch.key)
        fr.push(exp.children)
    return keys


def ridden_root(
    frontier: Frontier, spec: JobSpec, theta: torch.Tensor, ridges: list[torch.Tensor]
) -> int:
    """A started job whose root, at ``theta``, is ridden and pushes a child along each ridge."""
    store = frontier.storage
    job = store.create_job(spec, Branch(theta, None, None, (), spec.seed, 0.0))
    assert store.transition(job.id, "running")
    frontier.advance(job.id)
    (root,) = frontier.claim("w", 1, job_id=job.id)
    exp = expansion(root.branch, fanout=0)
    exp.node.theta = theta
    exp.children = [
        Branch(theta, d, -1.0, ((i, 1),), child_seed(spec.seed, (i, 1)), 0.0, parent_seed=spec.seed)
        for i, d in enumerate(ridges)
    ]
    exp.node.n_children, exp.node.is_leaf, exp.node.is_solution = len(ridges), False, False
    assert frontier.complete(root, exp)
    return job.id
