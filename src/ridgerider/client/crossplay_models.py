"""Wire format of the cross-play routes (``/api/v1/crossplay``), shared by server and SDK.

Pure pydantic, like :mod:`ridgerider.client.models`. The ranges equal the service's
(``ridgerider.services.crossplay``; a test checks they agree).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

__all__ = [
    "CROSSPLAY_STATUSES",
    "MAX_FINGERPRINTS",
    "MAX_REPLICATES",
    "Crossplay",
    "CrossplayCreate",
    "CrossplayPage",
    "CrossplayReport",
]

MAX_REPLICATES = 256
MAX_FINGERPRINTS = 4096
CROSSPLAY_STATUSES = ("queued", "running", "succeeded", "failed")
CrossplayStatus = Literal["queued", "running", "succeeded", "failed"]


class CrossplayCreate(BaseModel):
    """``POST /crossplay``: a two-player problem and how many RR replicates to cross-play."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    problem: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    params: dict[str, JsonValue] = Field(default_factory=dict, max_length=64)
    replicates: int = Field(ge=2, le=MAX_REPLICATES, description="independent RR runs")
    fingerprints: int | None = Field(
        None, ge=1, le=MAX_FINGERPRINTS, description="top eigen-indices (default: n_ridges)"
    )
    seed: int = Field(0, ge=0, le=2**63 - 1, description="master seed")


class Crossplay(BaseModel):
    """A cross-play run and how far it got (``done`` of ``replicates`` replicates)."""

    id: int
    problem: str
    params: dict[str, Any]
    replicates: int
    fingerprints: int | None
    seed: int
    status: CrossplayStatus
    done: int = Field(description="replicates finished")
    progress: float = Field(ge=0, le=1)
    error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        """Whether it reached a final status."""
        return self.status in ("succeeded", "failed")


class CrossplayPage(BaseModel):
    """A page of cross-play runs, newest first."""

    items: list[Crossplay]
    next_after: int | None = None


class CrossplayReport(BaseModel):
    """The report, exactly what ``ridgerider crossplay --json`` writes."""

    model_config = ConfigDict(extra="allow")

    problem: str
    params: dict[str, Any]
    replicates: int
    seed: int
    fingerprints: list[dict[str, Any]] = Field(
        description="per fingerprint: fingerprint, xp, xp_std, sp, sp_std, metrics, ..."
    )
    chosen: dict[str, Any] = Field(description="the fingerprint with the highest cross-play")
    baselines: dict[str, Any]
    matrix: dict[str, Any] = Field(description="labels and values: fingerprint cross-play")
    settings: dict[str, Any]
    workers: int
    elapsed_s: float
    extra: dict[str, Any] = Field(default_factory=dict)
