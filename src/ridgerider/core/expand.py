"""The unit of work: expand one branch into its ridden node and child branches.

:func:`expand` is a pure function of ``(problem, settings, branch)``: it reads no process state,
so any worker on any machine produces the same node and children for the same branch.
"""

from __future__ import annotations

import torch

from ridgerider.core.branch import Branch, Node, child_seed
from ridgerider.core.device import on_device, to_device
from ridgerider.core.problem import Problem
from ridgerider.core.ridge import OnStep, get_ridges, polish, ride
from ridgerider.core.settings import RRSettings

__all__ = ["Expansion", "expand"]

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
    """
    if settings.device == "cpu":
        return _expand(problem, settings, branch, on_step)
    with on_device(problem, settings.device) as device:
        out = _expand(problem, settings, to_device(branch, device), on_step)
    return Expansion(to_device(out.node, "cpu"), [to_device(c, "cpu") for c in out.children])


def _expand(
    problem: Problem, settings: RRSettings, branch: Branch, on_step: OnStep | None
) -> Expansion:
    loss_fn = problem.loss
    generator = torch.Generator().manual_seed(branch.seed)
    if branch.direction is None:
        loss0 = float(loss_fn(branch.theta))
        theta, steps, reason, losses = branch.theta.detach().clone(), 0, "root", [loss0]
        eig_end, crossings = None, 0
    else:
        assert branch.eigenvalue is not None
        out = ride(
            loss_fn,
            branch.theta,
            branch.direction,
            branch.eigenvalue,
            settings,
            hessian_fn=problem.hessian,
            on_step=on_step,
            hvp_fn=problem.exact_hvp,
        )
        theta, steps, reason, losses = out.theta, out.steps, out.end_reason, out.losses
        eig_end, crossings = out.eigenvalue, out.crossings

    stalled = branch.direction is not None and steps == 0
    at_max_depth = branch.depth >= settings.max_depth
    ridges, spectrum = (
        ([], None)
        if stalled
        else get_ridges(
            loss_fn,
            theta,
            settings,
            generator,
            hessian_fn=problem.hessian,
            hvp_fn=problem.exact_hvp,
        )
    )
    leaf_reason = None
    if stalled:
        leaf_reason = "stalled"
    elif at_max_depth:
        leaf_reason, ridges = "max_depth", []
    elif not ridges:
        leaf_reason = "no_ridges"
    is_leaf = leaf_reason is not None
    is_solution = is_leaf and not stalled
    if is_solution and settings.polish_steps:
        theta, polished = polish(
            loss_fn,
            theta,
            settings.polish_steps,
            settings.polish_lr,
            on_step=on_step,
            offset=steps,
        )
        steps += polished
    loss_end = float(loss_fn(theta))
    children = [
        Branch(
            theta=theta,
            direction=r.direction,
            eigenvalue=r.eigenvalue,
            fingerprint=(*branch.fingerprint, r.choice),
            seed=child_seed(branch.seed, r.choice),
            loss=loss_end,
        )
        for r in ridges
    ]
    node = Node(
        fingerprint=branch.fingerprint,
        theta=theta,
        eigenvalue=branch.eigenvalue,
        eigenvalue_end=eig_end,
        loss_start=losses[0],
        loss=loss_end,
        steps=steps,
        end_reason=reason,
        losses=losses,
        metrics=problem.metrics(theta),
        spectrum=[] if spectrum is None else spectrum[:SPECTRUM_KEEP].tolist(),
        n_children=len(children),
        is_leaf=is_leaf,
        is_solution=is_solution,
        leaf_reason=leaf_reason,
        solution_key=problem.solution_key(theta) if is_solution else None,
        crossings=crossings,
    )
    return Expansion(node, children)
