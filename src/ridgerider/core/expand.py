"""The unit of work: expand one branch into its ridden node and child branches.

:func:`expand` is a pure function of ``(problem, settings, branch)``: it reads no process state,
so any worker on any machine produces the same node and children for the same branch. The
children's ridges are a pure function of less still: the problem, the settings, the parent's
end θ and its seed. :func:`restore` recomputes a compacted child's ridge from those alone.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from ridgerider.core.branch import Branch, Node, child_seed, fingerprint_key
from ridgerider.core.device import on_device, to_device
from ridgerider.core.minibatch import curvature_at
from ridgerider.core.ood import ood_get_ridges, ood_ride
from ridgerider.core.problem import Problem
from ridgerider.core.ridge import OnStep, Ridge, get_ridges, is_finite, polish, ride
from ridgerider.core.settings import RRSettings

__all__ = [
    "Expansion",
    "Ridden",
    "Settled",
    "error_leaf",
    "expand",
    "finish",
    "record",
    "restore",
    "ride_metrics",
    "settle",
]

log = logging.getLogger(__name__)

SPECTRUM_KEEP = 32
"""How many of the lowest eigenvalues a node records."""


class Expansion:
    """The result of :func:`expand`: the node and the branches it opens."""

    __slots__ = ("children", "node")

    def __init__(self, node: Node, children: list[Branch]) -> None:
        self.node = node
        self.children = children


def expand(
    problem: Problem,
    settings: RRSettings,
    branch: Branch,
    on_step: OnStep | None = None,
) -> Expansion:
    """Ride ``branch`` (unless it is the root), then branch again with GetRidges.

    Args:
        problem: the loss and its metadata.
        settings: search hyperparameters (``settings.device``: where to compute; the node and
            children come back on the CPU).
        branch: what to ride; the root (``direction is None``) is only branched from.
        on_step: live progress of the ride and of a leaf's polish, in steps of the node so
            far (see ``core.ridge.ride``); it does not change the result.

    Raises ``ValueError`` for a compacted branch (:func:`restore` it first).
    """
    if branch.compacted:
        raise ValueError(f"branch {branch.key!r} is compacted: restore its ridge first")
    if settings.device == "cpu":
        return _expand(problem, settings, branch, on_step)
    with on_device(problem, settings.device) as device:
        out = _expand(problem, settings, to_device(branch, device), on_step)
    return Expansion(to_device(out.node, "cpu"), [to_device(c, "cpu") for c in out.children])


@dataclass
class Ridden:
    """Where the ride of a branch ended (the root is not ridden: zero steps)."""

    theta: Tensor
    steps: int
    reason: str
    losses: list[float]
    eigenvalue_end: float | None
    crossings: int


def _expand(
    problem: Problem, settings: RRSettings, branch: Branch, on_step: OnStep | None
) -> Expansion:
    """Ride, branch again with GetRidges, polish a solution leaf, record node and children."""
    generator = torch.Generator().manual_seed(branch.seed)
    rider = problem.at_node(fingerprint_key(branch.fingerprint[:-1]))
    ridden = _ride_branch(rider, settings, branch, on_step, generator)
    return finish(problem, settings, branch, ridden, generator, on_step)


def finish(
    problem: Problem,
    settings: RRSettings,
    branch: Branch,
    ridden: Ridden,
    generator: torch.Generator,
    on_step: OnStep | None = None,
) -> Expansion:
    """Everything :func:`expand` does after the ride: GetRidges, a leaf's polish, the records.

    ``ridden`` is where the branch's ride ended; ``generator`` is the branch's, seeded with its
    seed. ``core.expand_batched`` rides several branches together and finishes each with
    :func:`settle`, a polish (batched) and :func:`record`, which is what this does.
    """
    leaf = settle(problem, settings, branch, ridden, generator)
    diverged = leaf.polished and _polish_leaf(leaf.problem, settings, ridden, on_step)
    return record(leaf, diverged)


@dataclass
class Settled:
    """A ridden branch after GetRidges, before a solution leaf's polish (see :func:`finish`)."""

    problem: Problem
    """The problem at the branch's node (``Problem.at_node``)."""
    branch: Branch
    ridden: Ridden
    ridges: list[Ridge]
    spectrum: Tensor | None
    leaf_reason: str | None
    is_solution: bool
    polished: bool
    """Whether the leaf is polished (``ridden`` then moves to where the polish ends)."""
    ride_end: dict[str, object]


def settle(
    problem: Problem,
    settings: RRSettings,
    branch: Branch,
    ridden: Ridden,
    generator: torch.Generator,
) -> Settled:
    """GetRidges where the ride ended, and whether the node is a leaf, a solution, polished."""
    problem = problem.at_node(branch.key)
    stalled = branch.direction is not None and ridden.steps == 0
    ridges, spectrum = (
        ([], None) if stalled else _get_ridges(problem, settings, ridden.theta, branch.seed)
    )
    at_max_depth = settings.max_depth is not None and branch.depth >= settings.max_depth
    at_max_depth |= settings.method == "ood" and branch.depth >= settings.ood_depth
    leaf_reason, ridges = _leaf_reason(stalled, at_max_depth, ridges)
    is_solution = leaf_reason is not None and not stalled
    polished = bool(is_solution and settings.polish_steps)
    ride_end = ride_metrics(problem.metrics(ridden.theta)) if polished else {}
    return Settled(
        problem, branch, ridden, ridges, spectrum, leaf_reason, is_solution, polished, ride_end
    )


def record(leaf: Settled, diverged: bool) -> Expansion:
    """The node and children of a settled branch, once its polish (if any) is done."""
    problem, branch, ridden = leaf.problem, leaf.branch, leaf.ridden
    leaf_reason, is_solution, ridges = leaf.leaf_reason, leaf.is_solution, leaf.ridges
    loss_end = float(problem.loss(ridden.theta))
    if diverged or not is_finite(ridden.theta, loss_end):
        # A polish the numbers left (a learning rate far too large), or a point whose loss
        # is not finite, is no solution and branches no further: leaf reason ``diverged``.
        leaf_reason, is_solution, ridges = "diverged", False, []
    children = [
        Branch(
            theta=ridden.theta,
            direction=r.direction,
            eigenvalue=r.eigenvalue,
            fingerprint=(*branch.fingerprint, r.choice),
            seed=child_seed(branch.seed, r.choice),
            loss=loss_end,
            parent_seed=branch.seed,
        )
        for r in ridges
    ]
    spectrum = leaf.spectrum
    node = _node(problem, branch, ridden, loss_end, spectrum, children, leaf_reason, is_solution)
    node.metrics.update(leaf.ride_end)
    return Expansion(node, children)


def restore(
    problem: Problem,
    settings: RRSettings,
    branch: Branch,
    cache: dict[tuple[str, int], list[Ridge]] | None = None,
) -> Branch:
    """A compacted branch with its ridge recomputed; any other branch as it is.

    The ridge is GetRidges at the parent's end θ (the branch's own θ) with the parent's seed,
    exactly as :func:`expand` computed it for the parent: the same direction, bit for bit, on
    the same kind of device. ``cache`` (the parent's key and seed → its ridges) spares the
    siblings of a restored branch the same computation.

    Raises ``ValueError`` if the branch does not record its parent's seed, or the parent's
    ridges no longer include its choice.
    """
    if not branch.compacted:
        return branch
    if branch.parent_seed is None:
        raise ValueError(f"branch {branch.key!r} has no ridge and no parent seed to restore it")
    parent_key = fingerprint_key(branch.fingerprint[:-1])
    ident = (parent_key, branch.parent_seed)
    ridges = None if cache is None else cache.get(ident)
    if ridges is None:
        at_parent = problem.at_node(parent_key)
        if settings.device == "cpu":
            ridges = _get_ridges(at_parent, settings, branch.theta, branch.parent_seed)[0]
        else:
            with on_device(at_parent, settings.device) as device:
                found = _get_ridges(
                    at_parent, settings, branch.theta.to(device), branch.parent_seed
                )[0]
            ridges = [to_device(r, "cpu") for r in found]
        if cache is not None:
            cache[ident] = ridges
    choice = branch.fingerprint[-1]
    ridge = next((r for r in ridges if r.choice == choice), None)
    if ridge is None:
        raise ValueError(f"branch {branch.key!r}: its parent's ridges have no choice {choice}")
    if ridge.eigenvalue != branch.eigenvalue:
        log.warning(
            "branch %r restored with eigenvalue %r, recorded %r",
            branch.key,
            ridge.eigenvalue,
            branch.eigenvalue,
        )
    return replace(branch, direction=ridge.direction, eigenvalue=ridge.eigenvalue)


def ride_metrics(metrics: dict[str, object]) -> dict[str, object]:
    """The scalar metrics of a leaf where its ride ended, before the polish: ``ride_<name>``.

    A polished leaf records them beside its own (after the polish), so a report shows what the
    ride did and what the polish added (``ride_test_accuracy`` next to ``test_accuracy``).
    """
    return {
        f"ride_{k}": v
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _get_ridges(
    problem: Problem, settings: RRSettings, theta: Tensor, seed: int
) -> tuple[list[Ridge], Tensor]:
    """GetRidges at the end of the ride: a function of the end point and the branch's seed only.

    ``core.ood``'s for ``method="ood"``; with ``hvp_batch`` set, curvature from the branch's
    step-0 minibatch (``core.minibatch``). Its random draws come from a generator of its own,
    seeded with ``seed``, so :func:`restore` gets the same ridges without the ride.
    """
    if settings.method == "ood":
        return ood_get_ridges(problem, theta, settings)
    batches = curvature_at(problem, settings, seed)
    at_end = None if batches is None else batches(0)
    return get_ridges(
        problem.loss,
        theta,
        settings,
        torch.Generator().manual_seed(seed),
        hessian_fn=problem.hessian if at_end is None else at_end.hessian,
        hvp_fn=problem.exact_hvp if at_end is None else at_end.hvp,
        curvature_loss=None if at_end is None else at_end.loss,
    )


def _ride_branch(
    problem: Problem,
    settings: RRSettings,
    branch: Branch,
    on_step: OnStep | None,
    generator: torch.Generator,
) -> Ridden:
    """Ride the branch's ridge; the root stays where it is."""
    if branch.direction is None:
        loss0 = float(problem.loss(branch.theta))
        return Ridden(branch.theta.detach().clone(), 0, "root", [loss0], None, 0)
    assert branch.eigenvalue is not None
    if settings.method == "ood":
        out = ood_ride(problem, branch.theta, branch.direction, settings, generator, on_step)
        return Ridden(out.theta, out.steps, out.end_reason, out.losses, out.eigenvalue, 0)
    out = ride(
        problem.loss,
        branch.theta,
        branch.direction,
        branch.eigenvalue,
        settings,
        hessian_fn=problem.hessian,
        on_step=on_step,
        hvp_fn=problem.exact_hvp,
        curvature_at=curvature_at(problem, settings, branch.seed),
    )
    return Ridden(out.theta, out.steps, out.end_reason, out.losses, out.eigenvalue, out.crossings)


def _leaf_reason(
    stalled: bool, at_max_depth: bool, ridges: list[Ridge]
) -> tuple[str | None, list[Ridge]]:
    """Why the node is a leaf (``None``: it is not) and the ridges it branches into."""
    if stalled:
        return "stalled", ridges
    if at_max_depth:
        return "max_depth", []
    if not ridges:
        return "no_ridges", ridges
    return None, ridges


def _polish_leaf(
    problem: Problem, settings: RRSettings, ridden: Ridden, on_step: OnStep | None
) -> bool:
    """Finish a solution leaf by gradient descent; its steps count as the node's.

    Returns whether the polish diverged (``ridden.theta`` is then its last finite point).
    """
    out = polish(
        problem.loss,
        ridden.theta,
        settings.polish_steps,
        settings.polish_lr,
        on_step=on_step,
        offset=ridden.steps,
    )
    ridden.theta = out.theta
    ridden.steps += out.steps
    return out.diverged


def _node(
    problem: Problem,
    branch: Branch,
    ridden: Ridden,
    loss_end: float,
    spectrum: Tensor | None,
    children: list[Branch],
    leaf_reason: str | None,
    is_solution: bool,
) -> Node:
    """The node record of an expanded branch."""
    return Node(
        fingerprint=branch.fingerprint,
        theta=ridden.theta,
        eigenvalue=branch.eigenvalue,
        eigenvalue_end=ridden.eigenvalue_end,
        loss_start=ridden.losses[0],
        loss=loss_end,
        steps=ridden.steps,
        end_reason=ridden.reason,
        losses=ridden.losses,
        metrics=problem.metrics(ridden.theta),
        spectrum=[] if spectrum is None else spectrum[:SPECTRUM_KEEP].tolist(),
        n_children=len(children),
        is_leaf=leaf_reason is not None,
        is_solution=is_solution,
        leaf_reason=leaf_reason,
        solution_key=problem.solution_key(ridden.theta) if is_solution else None,
        crossings=ridden.crossings,
    )


def error_leaf(branch: Branch, error: str) -> Expansion:
    """A branch whose expansion raised on its last attempt, recorded as a leaf.

    It stays where the branch starts, takes no step, is never a solution, and keeps the error
    in its metrics (``{"error": ...}``) and end reason (``error``): the tree goes on around it,
    and the same failing branch gives the same tree on every run.
    """
    loss = branch.loss if branch.loss is not None else math.nan
    node = Node(
        fingerprint=branch.fingerprint,
        theta=branch.theta,
        eigenvalue=branch.eigenvalue,
        eigenvalue_end=None,
        loss_start=loss,
        loss=loss,
        steps=0,
        end_reason="error",
        losses=[],
        metrics={"error": error},
        spectrum=[],
        n_children=0,
        is_leaf=True,
        is_solution=False,
        leaf_reason="error",
    )
    return Expansion(node, [])
