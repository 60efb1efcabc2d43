"""The installed problems on the wire (``GET /problems``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["ProblemPublic"]


class ProblemPublic(BaseModel):
    """An installed problem with the JSON schema of its parameters."""

    name: str
    summary: str
    params_schema: dict[str, Any]
    default_settings: dict[str, Any]
