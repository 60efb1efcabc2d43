"""Jobs on the wire: ``POST /jobs`` and ``/extend`` bodies, a job, a page of jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, JsonValue, model_validator

from ridgerider.schemas.common import (
    SEED_MAX,
    AcceleratorText,
    JobStatusText,
    ProblemName,
    RequestModel,
)
from ridgerider.schemas.enums import JobStatus
from ridgerider.schemas.settings import MAX_NODES, MAX_STEPS, SearchSettings

__all__ = [
    "MAX_NAME",
    "MAX_TAG",
    "MAX_TAGS",
    "MAX_WALL_S",
    "TAG_PATTERN",
    "JobCreate",
    "JobExtend",
    "JobName",
    "JobPublic",
    "JobsPublic",
    "MisPublic",
    "Tag",
]

MAX_WALL_S = 30 * 86_400.0
"""The longest wall-time budget a job may ask for (30 days)."""
MAX_NAME = 128
"""The longest job name (characters)."""
MAX_TAG = 32
"""The longest tag (characters)."""
MAX_TAGS = 16
"""The most tags a job may carry."""
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:+-]*$"
"""What a tag may be made of: letters, digits and ``_.:+-`` (no spaces: it is a label)."""

JobName = Annotated[str, Field(min_length=1, max_length=MAX_NAME, pattern=r"^[^\x00-\x1f\x7f]+$")]
"""A job's name: free text on one line, without control characters."""
Tag = Annotated[str, Field(min_length=1, max_length=MAX_TAG, pattern=TAG_PATTERN)]
"""One tag of a job."""


class JobCreate(RequestModel):
    """``POST /jobs``: what to search and how."""

    problem: ProblemName
    params: dict[str, JsonValue] = Field(default_factory=dict, max_length=64)
    seed: int = Field(0, ge=0, le=SEED_MAX)
    settings: SearchSettings = Field(default_factory=SearchSettings)
    wall_time_s: float | None = Field(None, gt=0, le=MAX_WALL_S, description="budget: seconds")
    accelerator: AcceleratorText = Field(
        "cpu",
        description="which workers ride the branches: 'cpu', or 'gpu' (workers holding a GPU, "
        "computing on their CUDA device)",
    )
    name: JobName | None = Field(None, description="a label to find the job by")
    tags: list[Tag] = Field(
        default_factory=list, max_length=MAX_TAGS, description="labels to filter jobs by"
    )

    @model_validator(mode="after")
    def _distinct_tags(self) -> JobCreate:
        self.tags = list(dict.fromkeys(self.tags))
        return self


class JobExtend(RequestModel):
    """``POST /jobs/{id}/extend``: new, larger budgets (at least one)."""

    max_nodes: int | None = Field(None, ge=1, le=MAX_NODES)
    max_steps: int | None = Field(None, ge=0, le=MAX_STEPS)
    wall_time_s: float | None = Field(None, gt=0, le=MAX_WALL_S)

    @model_validator(mode="after")
    def _one_budget(self) -> JobExtend:
        if self.max_nodes is None and self.max_steps is None and self.wall_time_s is None:
            raise ValueError("give at least one of max_nodes, max_steps, wall_time_s")
        return self


class MisPublic(BaseModel):
    """The maximally invariant saddle the search started from."""

    loss: float | None
    grad_norm: float | None
    negative_eigenvalues: int
    spectrum: list[float | None] = Field(
        default_factory=list, description="lowest Hessian eigenvalues at the MIS, ascending"
    )


class JobPublic(BaseModel):
    """A job and how far it got."""

    id: int
    problem: str
    params: dict[str, Any]
    seed: int
    status: JobStatusText
    stopped_by: str | None
    error: str | None
    method: str
    order: str
    accelerator: AcceleratorText = "cpu"
    name: str | None = None
    tags: list[str] = Field(default_factory=list)
    solutions: int | None = Field(None, description="solutions found so far")
    settings: dict[str, Any]
    mis: MisPublic | None = Field(
        None, description="null until a worker has found the MIS (the job's first task)"
    )
    phase: Literal["mis", "search"] | None = Field(
        None,
        description="what an unfinished job is doing: finding its MIS, or searching from it",
    )
    nodes: int = Field(description="nodes of the finished tree (budget used)")
    steps: int = Field(description="ride steps of those nodes (budget used)")
    max_nodes: int
    max_steps: int
    wall_time_s: float | None
    elapsed_s: float
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        """Whether the job reached a final status."""
        return JobStatus(self.status).finished


class JobsPublic(BaseModel):
    """A page of jobs, newest first; pass ``next_after`` as ``after`` for the next page."""

    items: list[JobPublic]
    next_after: int | None
