"""The JSON report of a search, shared by ``ridgerider run``, ``show`` and the service.

Shape: ``{"problem", "params", "seed", "method", "order", "mis": {"loss", "grad_norm",
"negative_eigenvalues"}, "nodes", "solutions": [{"fingerprint": [[index, sign], ...], "loss",
"metrics"}], "elapsed_s"}``, plus ``"coverage": {"found", "total"}`` for problems that know their
target solutions.
"""

from __future__ import annotations

from typing import Any

from ridgerider.core.branch import Node
from ridgerider.core.mis import MISResult
from ridgerider.core.problem import Problem
from ridgerider.core.search import coverage

__all__ = ["node_summary", "search_report"]


def node_summary(node: Node) -> dict[str, Any]:
    """A solution as it appears in the report."""
    return {
        "fingerprint": [[i, s] for i, s in node.fingerprint],
        "loss": node.loss,
        "metrics": node.metrics,
    }


def search_report(
    *,
    problem: Problem,
    params: dict[str, Any],
    seed: int,
    method: str,
    order: str,
    mis: MISResult,
    nodes: list[Node],
    elapsed_s: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the report of a search over ``nodes`` (in expansion order)."""
    report: dict[str, Any] = {
        "problem": problem.name,
        "params": params,
        "seed": seed,
        "method": method,
        "order": order,
        "mis": {
            "loss": mis.loss,
            "grad_norm": mis.grad_norm,
            "negative_eigenvalues": mis.negative_eigenvalues,
        },
        "nodes": len(nodes),
        "solutions": [node_summary(n) for n in nodes if n.is_solution],
        "elapsed_s": round(elapsed_s, 3),
    }
    cov = coverage(problem, nodes)
    if cov is not None:
        report["coverage"] = cov
    if extra:
        report.update(extra)
    return report
