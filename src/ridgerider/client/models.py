"""The wire format of the ridgerider API (``/api/v1``), shared by the server and the SDK.

Pure pydantic: importing this module needs neither torch nor the server's libraries. Request
models carry every range the server enforces; response models are what the SDK returns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

__all__ = [
    "JOB_STATUSES",
    "ErrorItem",
    "Job",
    "JobCreate",
    "JobExtend",
    "JobPage",
    "Node",
    "NodePage",
    "NodeTrace",
    "Problem",
    "Ride",
    "SearchSettings",
    "Solution",
    "Tree",
]

Choice = Annotated[list[int], Field(min_length=2, max_length=2)]
"""One step of a fingerprint: ``[ridge index, sign]`` (sign ±1)."""
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
JOB_STATUSES: tuple[str, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
MAX_NODES = 1_000_000
MAX_STEPS = 1_000_000_000
MAX_WALL_S = 30 * 86_400.0
SEED_MAX = 2**63 - 1


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class SearchSettings(_Request):
    """Search settings of a job; a field left out takes the problem's default.

    See ``ridgerider.core.settings.RRSettings`` for what each one does.
    """

    method: Literal["exact", "approx"] | None = None
    order: Literal["bfs", "dfs", "priority", "random"] | None = None
    approx_update: Literal["rayleigh_ritz", "paper"] | None = None
    approx_tol: float | None = Field(None, gt=0, lt=1)
    approx_steps: int | None = Field(None, ge=0, le=10_000, description="paper update steps")
    approx_lr_e: float | None = Field(None, ge=0, le=1e6)
    approx_lr_lambda: float | None = Field(None, ge=0, le=1e6)
    step_rule: Literal["backtrack", "fixed"] | None = None
    n_ridges: int | None = Field(None, ge=1, le=4096, description="ridges per branch")
    one_per_group: bool | None = None
    repeat_tol: float | None = Field(None, ge=0, le=1)
    zero_tol: float | None = Field(None, ge=0, le=1)
    alpha: float | None = Field(None, gt=0, le=1e6, description="largest step size")
    alpha_min: float | None = Field(None, gt=0, le=1e6)
    overlap_threshold: float | None = Field(None, gt=0, le=1, description="ride break threshold")
    end_on_convex: bool | None = None
    max_ride_steps: int | None = Field(None, ge=1, le=1_000_000)
    min_progress: float | None = Field(None, ge=0, le=1)
    signs: Literal["both", "descent"] | None = None
    grad_tol: float | None = Field(None, ge=0, le=1e6)
    cluster_tol: float | None = Field(None, ge=0, lt=1)
    update: Literal["exact", "fixed"] | None = None
    ridge_rule: Literal["eigen", "random_ascent"] | None = None
    polish_steps: int | None = Field(None, ge=0, le=1_000_000)
    polish_lr: float | None = Field(None, gt=0, le=1e6)
    max_depth: int | None = Field(None, ge=0, le=1024)
    max_nodes: int | None = Field(None, ge=1, le=MAX_NODES, description="budget: nodes")
    max_steps: int | None = Field(None, ge=0, le=MAX_STEPS, description="budget: ride steps")

    def given(self) -> dict[str, Any]:
        """The settings the request sets (the rest take the problem's defaults)."""
        return self.model_dump(exclude_none=True)


class JobCreate(_Request):
    """``POST /jobs``: what to search and how."""

    problem: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    params: dict[str, JsonValue] = Field(default_factory=dict, max_length=64)
    seed: int = Field(0, ge=0, le=SEED_MAX)
    settings: SearchSettings = Field(default_factory=SearchSettings)
    wall_time_s: float | None = Field(None, gt=0, le=MAX_WALL_S, description="budget: seconds")
    device: Literal["cpu"] = Field("cpu", description="workers' device (CPU workers only)")


class JobExtend(_Request):
    """``POST /jobs/{id}/extend``: new, larger budgets (at least one)."""

    max_nodes: int | None = Field(None, ge=1, le=MAX_NODES)
    max_steps: int | None = Field(None, ge=0, le=MAX_STEPS)
    wall_time_s: float | None = Field(None, gt=0, le=MAX_WALL_S)

    @model_validator(mode="after")
    def _one_budget(self) -> JobExtend:
        if self.max_nodes is None and self.max_steps is None and self.wall_time_s is None:
            raise ValueError("give at least one of max_nodes, max_steps, wall_time_s")
        return self


class Mis(BaseModel):
    """The maximally invariant saddle the search started from."""

    loss: float | None
    grad_norm: float | None
    negative_eigenvalues: int
    spectrum: list[float | None] = Field(
        default_factory=list, description="lowest Hessian eigenvalues at the MIS, ascending"
    )


class Job(BaseModel):
    """A job and how far it got."""

    id: int
    problem: str
    params: dict[str, Any]
    seed: int
    status: JobStatus
    stopped_by: str | None
    error: str | None
    method: str
    order: str
    settings: dict[str, Any]
    mis: Mis
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
        return self.status in ("succeeded", "failed", "cancelled")


class JobPage(BaseModel):
    """A page of jobs, newest first; pass ``next_after`` as ``after`` for the next page."""

    items: list[Job]
    next_after: int | None


class Node(BaseModel):
    """A node of a job's tree (results are ``None`` until it is done)."""

    id: int
    parent_id: int | None
    fingerprint: list[Choice] = Field(description="[ridge index, sign] choices from the root")
    key: str
    depth: int
    rank: int | None = Field(description="position in the single-worker expansion order")
    status: Literal["waiting", "leased", "done", "dead"]
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


class NodePage(BaseModel):
    """A page of a job's finished tree in expansion order; ``next_after`` goes to ``after``."""

    items: list[Node]
    next_after: int | None


class Tree(BaseModel):
    """A job's tree shaped for drawing: every node with its parent."""

    job_id: int
    status: JobStatus
    complete: bool = Field(description="the job is finished: this is its whole tree")
    nodes: list[Node]


class Ride(BaseModel):
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


class Solution(BaseModel):
    """A solution leaf, in the order the single-worker search finds it."""

    node_id: int
    fingerprint: list[Choice]
    key: str
    rank: int
    solution_key: str | None
    loss: float | None
    metrics: dict[str, Any]


class Problem(BaseModel):
    """An installed problem with the JSON schema of its parameters."""

    name: str
    summary: str
    params_schema: dict[str, Any]
    default_settings: dict[str, Any]


class ErrorItem(BaseModel):
    """One invalid field: where (``loc``), what is wrong (``msg``), and the kind (``type``)."""

    loc: list[str | int]
    msg: str
    type: str


class NodeTrace(BaseModel):
    """How a node's ride went, step by step (``GET /jobs/{id}/nodes/{node}/trace``)."""

    node_id: int
    losses: list[float | None] = Field(description="the loss at every accepted ride step")
    spectrum: list[float | None] = Field(
        description="lowest Hessian eigenvalues where the ride ended, ascending"
    )
