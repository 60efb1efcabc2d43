"""Encode expansions for storage: node results as column values, children as rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ridgerider.core.branch import Branch, Node, tensor_to_bytes
from ridgerider.services.frontier.speculation import spec_key
from ridgerider.services.storage.records import NODE_RESULT_FIELDS, NODE_RESULT_TYPES

__all__ = ["admits_no_more", "child_rows", "finite_or_none", "node_values", "ridden_branch"]


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
    values = {
        name: finite_or_none(v) if name in JSON_FIELDS else _not_nan(v)
        for name, v in values.items()
    }
    values["theta_data"] = tensor_to_bytes(node.theta)
    return values


JSON_FIELDS = tuple(name for name, kind in NODE_RESULT_TYPES.items() if kind is dict)
"""Result fields stored as JSON, which has no NaN or ±Inf."""


def _not_nan(value: Any) -> Any:
    """A float column keeps ±Inf (both databases store it); NaN becomes ``None``.

    SQLite stores NaN as NULL anyway, and no reader expects a NaN.
    """
    return None if isinstance(value, float) and math.isnan(value) else value


def finite_or_none(value: Any) -> Any:
    """``value`` with every NaN or ±Inf float, however deeply nested, replaced by ``None``.

    Neither PostgreSQL's JSON nor strict JSON on the wire has them.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(v) for v in value]
    return value


def ridden_branch(branch: Branch, theta: bytes) -> bytes | None:
    """What a ridden row keeps of its branch: the header (``None``: all of it).

    A done row is never ridden again, and its θ is its parent's end θ (children of
    ``core.expand``), so its tensors are dropped. The root has no parent: its θ (the MIS) is
    dropped only where it equals the row's own end θ (``theta``, raw: the root only branches),
    so that θ is stored once; a root that moved (a leaf polished at the MIS) keeps it.
    Readers take a root's θ from its own row's ``theta_data``.
    """
    if branch.depth == 0 and tensor_to_bytes(branch.theta) != theta:
        return None
    return branch.to_bytes(theta=False, direction=False)


def admits_no_more(admitted: int, max_nodes: int, stopped_by: str | None) -> bool:
    """Whether a job's current budgets admit no further rank (the sequencer's ``_admit``).

    Children pushed then are stored as headers only (``branch_head``): only ``extend`` could
    admit them, and the worker that rides one then restores its ridge (``core.expand.restore``).
    """
    return admitted >= max_nodes or stopped_by is not None


def _encode(child: Branch, theta: bytes | None) -> tuple[bytes, bytes | None]:
    """A child's record and, when it is restorable, its header-only form.

    θ is left out when it is the parent's end θ (``theta``, raw); the header-only form exists
    when θ is shared and the parent's seed recorded.
    """
    shared = theta is not None and tensor_to_bytes(child.theta) == theta
    data = child.to_bytes(theta=not shared)
    lean = shared and child.parent_seed is not None
    return data, child.to_bytes(theta=False, direction=False) if lean else None


def child_rows(
    job_id: int,
    parent_id: int,
    children: Sequence[Branch],
    theta: bytes | None = None,
    order: str | None = None,
) -> list[dict[str, Any]]:
    """Rows of new child branches (waiting, unranked: the sequencer orders them).

    ``theta``: the parent's raw end θ (its row's ``theta_data``); children starting there (every
    child of ``core.expand``) are stored without it, and readers take it from the parent row.
    ``branch_head`` (not a column) is the header-only record to store instead when the job
    admits no more ranks (:func:`admits_no_more`), or ``None``. ``order``: the job's search
    order, which sets their speculation key (``spec``, :mod:`.speculation`).
    """
    rows = []
    for i, b in enumerate(children):
        data, head = _encode(b, theta)
        rows.append({
            "job_id": job_id,
            "parent_id": parent_id,
            "key": b.key,
            "depth": b.depth,
            "child_index": i,
            "branch_loss": b.loss,
            "branch_data": data,
            "branch_head": head,
            "spec": None if order is None else spec_key(order, b),
        })  # fmt: skip
    return rows
