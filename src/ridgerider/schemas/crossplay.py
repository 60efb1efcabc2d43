"""Cross-play on the wire (``/api/v1/crossplay``): a request, a run, a page, the report.

The ranges equal the service's (``ridgerider.services.crossplay``; a test checks they agree).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ridgerider.schemas.common import SEED_MAX, CrossplayStatusText, ProblemName, RequestModel
from ridgerider.schemas.enums import CrossplayStatus

__all__ = [
    "MAX_FINGERPRINTS",
    "MAX_REPLICATES",
    "CrossplayCreate",
    "CrossplayPublic",
    "CrossplayReportPublic",
    "CrossplaysPublic",
]

MAX_REPLICATES = 256
"""The most independent RR runs one cross-play may ask for."""
MAX_FINGERPRINTS = 4096
"""The most fingerprints (top eigen-indices) one cross-play may ask for."""


class CrossplayCreate(RequestModel):
    """``POST /crossplay``: a two-player problem and how many RR replicates to cross-play."""

    problem: ProblemName
    params: dict[str, JsonValue] = Field(default_factory=dict, max_length=64)
    replicates: int = Field(ge=2, le=MAX_REPLICATES, description="independent RR runs")
    fingerprints: int | None = Field(
        None, ge=1, le=MAX_FINGERPRINTS, description="top eigen-indices (default: n_ridges)"
    )
    seed: int = Field(0, ge=0, le=SEED_MAX, description="master seed")


class CrossplayPublic(BaseModel):
    """A cross-play run and how far it got (``done`` of ``replicates`` replicates)."""

    id: int
    problem: str
    params: dict[str, Any]
    replicates: int
    fingerprints: int | None
    seed: int
    status: CrossplayStatusText
    done: int = Field(description="replicates finished")
    progress: float = Field(ge=0, le=1)
    error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        """Whether it reached a final status."""
        return self.status in (CrossplayStatus.SUCCEEDED, CrossplayStatus.FAILED)


class CrossplaysPublic(BaseModel):
    """A page of cross-play runs, newest first."""

    items: list[CrossplayPublic]
    next_after: int | None = None


class CrossplayReportPublic(BaseModel):
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
