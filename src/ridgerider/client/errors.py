"""Exceptions of the SDK: one per kind of failure the server reports."""

from __future__ import annotations

from typing import Any

from ridgerider.schemas import ErrorItem

__all__ = ["ApiError", "AuthError", "ConflictError", "NotFound", "ServerError", "ValidationError"]


class ApiError(Exception):
    """The server answered with an error status; ``detail`` is its JSON ``detail``."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class AuthError(ApiError):
    """401: the token is missing, wrong, expired or revoked."""


class NotFound(ApiError):  # noqa: N818 (the name the API documents)
    """404: no such job or node (another user's job looks the same)."""


class ConflictError(ApiError):
    """409: e.g. cancelling a finished job, or an idempotency key reused for another request."""


class ServerError(ApiError):
    """5xx: the server failed (a bug, or a dependency is down)."""


class ValidationError(ApiError):
    """422 (or 413): invalid input. ``errors`` lists each field; ``fields`` maps path → message."""

    def __init__(self, status: int, detail: Any) -> None:
        items = detail if isinstance(detail, list) else [{"loc": [], "msg": str(detail)}]
        self.errors = [
            ErrorItem.model_validate({"type": "value_error"} | dict(item)) for item in items
        ]
        self.fields = {".".join(str(p) for p in e.loc if p != "body"): e.msg for e in self.errors}
        super().__init__(status, detail)

    def __str__(self) -> str:
        return "invalid input: " + "; ".join(f"{k or 'body'}: {v}" for k, v in self.fields.items())


def error_for(status: int, detail: Any) -> ApiError:
    """The exception for an error response."""
    if status in (401, 403):
        return AuthError(status, detail)
    if status == 404:
        return NotFound(status, detail)
    if status == 409:
        return ConflictError(status, detail)
    if status in (413, 422):
        return ValidationError(status, detail)
    if status >= 500:
        return ServerError(status, detail)
    return ApiError(status, detail)
