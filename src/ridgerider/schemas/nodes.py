"""A job's nodes on the wire: one node, a page of them, a node's ride trace, a ride in flight."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from ridgerider.schemas.common import Choice, NodeStatusText

__all__ = ["NodePublic", "NodeTracePublic", "NodesPublic", "RidePublic"]


class NodePublic(BaseModel):
    """A node of a job's tree (results are ``None`` until it is done)."""

    id: int
    parent_id: int | None
    fingerprint: list[Choice] = Field(description="[ridge index, sign] choices from the root")
    key: str
    depth: int
    rank: int | None = Field(description="position in the single-worker expansion order")
    status: NodeStatusText
    eigenvalue: float | None
    eigenvalue_end: float | None
    loss_start: float | None
    loss: float | None
    steps: int | None
    end_reason: str | None
    leaf_reason: str | None
    is_leaf: bool | None
    is_solution: bool | None
    solution_key: str | None
    n_children: int | None
    crossings: int | None
    metrics: dict[str, Any] | None
    finished_at: datetime | None


class NodesPublic(BaseModel):
    """A page of a job's finished tree in expansion order; ``next_after`` goes to ``after``."""

    items: list[NodePublic]
    next_after: int | None


class NodeTracePublic(BaseModel):
    """How a node's ride went, step by step (``GET /jobs/{id}/nodes/{node}/trace``)."""

    node_id: int
    losses: list[float | None] = Field(description="the loss at every accepted ride step")
    spectrum: list[float | None] = Field(
        description="lowest Hessian eigenvalues where the ride ended, ascending"
    )


class RidePublic(BaseModel):
    """A branch being ridden right now, with the progress its worker last reported.

    Workers report with their lease heartbeats (every few seconds while a ride takes steps), so
    a ride of minutes shows its steps and loss before it joins the tree.
    """

    node_id: int
    fingerprint: list[Choice] = Field(description="[ridge index, sign] choices from the root")
    key: str
    depth: int
    worker: str | None = Field(description="the lease holder")
    attempts: int = Field(description="claims so far, this one included")
    steps: int = Field(description="steps taken so far: the ride's, then a leaf's polish")
    loss: float | None = Field(description="the loss after the last reported step")
    loss_start: float | None = Field(description="the loss where the ride began")
