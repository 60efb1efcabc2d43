"""The in-process search loop: order branches, call :func:`expand`, respect the budgets."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ridgerider.core.branch import Branch, Node
from ridgerider.core.expand import expand
from ridgerider.core.frontier import MemoryFrontier
from ridgerider.core.mis import MISResult, find_mis
from ridgerider.core.ood import check_ood_problem, find_ood_mis
from ridgerider.core.problem import Problem
from ridgerider.core.settings import MISSettings, RRSettings

__all__ = ["SearchResult", "branch_point", "coverage", "root_branch", "run_search"]


@dataclass
class SearchResult:
    """A finished (or budget-stopped) search: the MIS, every node in expansion order."""

    mis: MISResult
    nodes: list[Node]
    steps: int
    elapsed_s: float
    stopped_by: str
    """``exhausted`` (frontier empty), ``max_nodes`` or ``max_steps``."""
    pending: int = 0
    """Branches left in the frontier when the search stopped."""

    @property
    def solutions(self) -> list[Node]:
        """The solution leaves, in expansion order."""
        return [n for n in self.nodes if n.is_solution]


def root_branch(mis: MISResult, seed: int, loss: float | None = None) -> Branch:
    """The branch at the MIS: expanding it only branches (there is no ridge to ride)."""
    return Branch(mis.theta, None, None, (), seed, mis.loss if loss is None else loss)


def branch_point(
    problem: Problem,
    settings: RRSettings,
    mis_settings: MISSettings | None,
    generator: torch.Generator,
) -> MISResult:
    """Where the tree starts: the MIS (``core.mis``), or for ``method="ood"`` ``core.ood``'s.

    Raises :class:`~ridgerider.core.errors.SettingsError` on ``method`` for ``ood`` on a
    problem without training environments.
    """
    if settings.method == "ood":
        check_ood_problem(problem, settings)
        return find_ood_mis(problem, settings, generator)
    return find_mis(problem, mis_settings, generator, settings.zero_tol)


def coverage(problem: Problem, nodes: list[Node]) -> dict[str, int] | None:
    """Distinct target solutions found, for problems that know their targets."""
    targets = problem.targets()
    if targets is None:
        return None
    found = {n.solution_key for n in nodes if n.is_solution} & set(targets)
    return {"found": len(found), "total": len(set(targets))}


def run_search(
    problem: Problem,
    settings: RRSettings,
    *,
    seed: int = 0,
    mis_settings: MISSettings | None = None,
    mis: MISResult | None = None,
    on_node: Callable[[Node, int], None] | None = None,
) -> SearchResult:
    """Run Ridge Rider in this process until the frontier empties or a budget is spent.

    Budgets stop new branches from starting; a ride that has started always finishes, so a
    node never depends on how much budget was left (the tree is the same however the work is
    scheduled).

    Args:
        problem: what to search.
        settings: hyperparameters and budgets.
        seed: the job seed; every branch seed derives from it, so the same seed gives the
            same tree.
        mis_settings: how to find the MIS (ignored when ``mis`` is given).
        mis: a precomputed MIS.
        on_node: called after every expansion with the node and the total steps so far.
    """
    start = time.perf_counter()
    if mis is None:
        mis = branch_point(problem, settings, mis_settings, torch.Generator().manual_seed(seed))
    frontier = MemoryFrontier(settings.order, seed)
    frontier.push([root_branch(mis, seed)])
    nodes: list[Node] = []
    steps = 0
    stopped_by = "exhausted"
    while len(frontier):
        if len(nodes) >= settings.max_nodes:
            stopped_by = "max_nodes"
            break
        if steps >= settings.max_steps and nodes:
            stopped_by = "max_steps"
            break
        branch = frontier.pop()
        result = expand(problem, settings, branch)
        steps += result.node.steps
        nodes.append(result.node)
        frontier.push(result.children)
        if on_node is not None:
            on_node(result.node, steps)
    return SearchResult(
        mis=mis,
        nodes=nodes,
        steps=steps,
        elapsed_s=time.perf_counter() - start,
        stopped_by=stopped_by,
        pending=len(frontier),
    )
