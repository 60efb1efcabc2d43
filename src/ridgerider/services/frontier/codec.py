"""Encode expansions for storage: node results as column values, children as rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ridgerider.core.branch import Branch, Node, tensor_to_bytes
from ridgerider.services.storage.records import NODE_RESULT_FIELDS

__all__ = ["child_rows", "node_values"]


def node_values(node: Node) -> dict[str, Any]:
    """Column values of a done node: its ``NodeResult`` fields, and ``theta_data``.

    Each result field is the node's attribute of the same name, except ``trace`` (built from
    the ride's losses, the end spectrum and the parameters' dtype); ``theta_data`` holds the raw
    end parameters.
    """
    values = {name: getattr(node, name) for name in NODE_RESULT_FIELDS if name != "trace"}
    values["trace"] = {
        "losses": node.losses,
        "spectrum": node.spectrum,
        "dtype": str(node.theta.dtype).removeprefix("torch."),
    }
    values["theta_data"] = tensor_to_bytes(node.theta)
    return values


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
