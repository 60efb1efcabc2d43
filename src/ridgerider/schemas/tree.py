"""A job's tree on the wire: the whole tree for drawing, and its solution leaves."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ridgerider.schemas.common import Choice, JobStatusText
from ridgerider.schemas.nodes import NodePublic

__all__ = ["SolutionPublic", "TreePublic"]


class TreePublic(BaseModel):
    """A job's tree shaped for drawing: every node with its parent."""

    job_id: int
    status: JobStatusText
    complete: bool = Field(description="the job is finished: this is its whole tree")
    nodes: list[NodePublic]


class SolutionPublic(BaseModel):
    """A solution leaf, in the order the single-worker search finds it."""

    node_id: int
    fingerprint: list[Choice]
    key: str
    rank: int
    solution_key: str | None
    loss: float | None
    metrics: dict[str, Any]
