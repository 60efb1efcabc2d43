"""What the wire models share: the request base, a fingerprint step, limits, statuses as text."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ridgerider.schemas.enums import Accelerator, CrossplayStatus, JobStatus, NodeStatus

__all__ = [
    "ID_MAX",
    "PROBLEM_PATTERN",
    "RANK_MAX",
    "SEED_MAX",
    "AcceleratorText",
    "Choice",
    "CrossplayStatusText",
    "JobStatusText",
    "NodeStatusText",
    "ProblemName",
    "RequestModel",
    "as_text",
]

SEED_MAX = 2**63 - 1
"""The largest seed (a signed 64-bit integer, as stored)."""
ID_MAX = 2**63 - 1
"""The largest id of a job, a node or a cross-play run (signed 64-bit columns)."""
RANK_MAX = 2**31 - 1
"""The largest position in a job's finished tree (``nodes.rank``, a signed 32-bit column): a
path or query parameter compared with a column must fit it, or PostgreSQL refuses the query."""
PROBLEM_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

Choice = Annotated[list[int], Field(min_length=2, max_length=2)]
"""One step of a fingerprint: ``[ridge index, sign]`` (sign ±1)."""
ProblemName = Annotated[str, Field(min_length=1, max_length=64, pattern=PROBLEM_PATTERN)]
"""The name of an installed problem (the registry checks it exists)."""


class RequestModel(BaseModel):
    """A request body: unknown fields, NaN, infinities and coerced types are all refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


def as_text(enum: type[StrEnum]) -> Any:
    """The field type of a status: ``enum``'s values on the wire, a member in Python.

    Validated and documented as the ``Literal`` of the values: an inline ``{"enum": [...],
    "type": "string"}`` in the OpenAPI document, and a wrong value gets the literal's error
    (``literal_error``, "Input should be 'a' or 'b'"); the validated value is the member. (A
    field typed with the enum itself would make FastAPI add the enum as a component.)
    """
    values = tuple(member.value for member in enum)
    return Annotated[Literal[values], AfterValidator(enum)]


JobStatusText = as_text(JobStatus)
"""A job's status on the wire."""
NodeStatusText = as_text(NodeStatus)
"""A node's status on the wire."""
CrossplayStatusText = as_text(CrossplayStatus)
"""A cross-play run's status on the wire."""
AcceleratorText = as_text(Accelerator)
"""Which workers ride a job (``cpu`` or ``gpu``) on the wire."""
