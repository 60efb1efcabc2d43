"""The body of an invalid-input answer (422, and 413 for a body too large).

Every other error answers ``{"detail": "<message>"}``.
"""

from __future__ import annotations

from pydantic import BaseModel

__all__ = ["ErrorItem", "ErrorPublic"]


class ErrorItem(BaseModel):
    """One invalid field: where (``loc``), what is wrong (``msg``), and the kind (``type``)."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorPublic(BaseModel):
    """``{"detail": [...]}``: every invalid field of a request, FastAPI's shape."""

    detail: list[ErrorItem]
