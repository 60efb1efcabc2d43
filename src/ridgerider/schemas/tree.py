"""A job's tree on the wire: the whole tree for drawing, and its solution leaves."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ridgerider.schemas.common import Choice, JobStatusText
from ridgerider.schemas.nodes import NodePublic

__all__ = ["SolutionPublic", "TreeCompactPublic", "TreePublic"]


class TreePublic(BaseModel):
    """A job's tree shaped for drawing: every node with its parent."""

    job_id: int
    status: JobStatusText
    complete: bool = Field(description="the job is finished: this is its whole tree")
    nodes: list[NodePublic]


class TreeCompactPublic(BaseModel):
    """A page of a job's finished tree as parallel arrays: what drawing it needs, nothing more.

    Element ``i`` of every array is one node; nodes come in rank order (single-worker expansion
    order; every node's parent comes before it), ``next_after`` goes to ``after`` for the next
    page (``null``: the last). A node's trace and parameters are behind its own routes.
    """

    job_id: int
    job_status: JobStatusText
    complete: bool = Field(description="the job is finished (its tree grows no more)")
    count: int = Field(description="nodes on this page (the length of every array)")
    next_after: int | None
    id: list[int]
    parent_id: list[int | None]
    key: list[str] = Field(description="the fingerprint as text: `0+.3-` (ridge index, sign)")
    depth: list[int]
    rank: list[int]
    status: list[str] = Field(description="each node's status (`done` in the finished tree)")
    eigenvalue: list[float | None]
    loss: list[float | None]
    steps: list[int | None]
    end_reason: list[str | None]
    is_leaf: list[bool | None]
    is_solution: list[bool | None]
    metrics: list[dict[str, Any] | None]


class SolutionPublic(BaseModel):
    """A solution leaf, in the order the single-worker search finds it."""

    node_id: int
    fingerprint: list[Choice]
    key: str
    rank: int
    solution_key: str | None
    loss: float | None
    metrics: dict[str, Any]


class ChosenPublic(BaseModel):
    """The solution chosen on held-out data (the paper's two-step choice, ``core.selection``)."""

    by: str = Field(description="the held-out metric the choice maximises")
    chosen: SolutionPublic | None = Field(
        description="the solution with the highest `by` so far; null while no solution reports it"
    )
