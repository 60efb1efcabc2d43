"""Errors of the engine that callers turn into messages about their input."""

from __future__ import annotations

__all__ = ["SettingsError"]


class SettingsError(ValueError):
    """A search setting is unknown or out of range; ``field`` names it.

    Callers that report errors per field (the API's 422 body, the CLI's exit 2) read ``field``
    instead of parsing the message.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
