"""Encode expansions for storage: node results as column values, children as rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ridgerider.core.branch import Branch, Node, tensor_to_bytes

__all__ = ["child_rows", "node_values"]


def node_values(node: Node) -> dict[str, Any]:
    """Column values of a done node (``theta_data`` holds the raw end parameters)."""
    return {
        "eigenvalue": node.eigenvalue,
        "eigenvalue_end": node.eigenvalue_end,
        "loss_start": node.loss_start,
        "loss": node.loss,
        "steps": node.steps,
        "end_reason": node.end_reason,
        "leaf_reason": node.leaf_reason,
        "is_leaf": node.is_leaf,
        "is_solution": node.is_solution,
        "solution_key": node.solution_key,
        "n_children": node.n_children,
        "crossings": node.crossings,
        "metrics": node.metrics,
        "trace": {
            "losses": node.losses,
            "spectrum": node.spectrum,
            "dtype": str(node.theta.dtype).removeprefix("torch."),
        },
        "theta_data": tensor_to_bytes(node.theta),
    }


def child_rows(job_id: int, parent_id: int, children: Sequence[Branch]) -> list[dict[str, Any]]:
    """Rows of new child branches (waiting, unranked: the sequencer orders them)."""
    return [
        {
            "job_id": job_id,
            "parent_id": parent_id,
            "key": b.key,
            "depth": b.depth,
            "child_index": i,
            "branch_loss": b.loss,
            "branch_data": b.to_bytes(),
        }
        for i, b in enumerate(children)
    ]
