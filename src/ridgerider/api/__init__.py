"""The HTTP API of ridgerider (FastAPI), versioned under ``/api/v1``.

``create_app(settings)`` builds the app; ``ridgerider serve`` runs it with uvicorn. Routes are
thin: they validate input (every field has a type and a range), authenticate the bearer token,
check that the caller owns the job and call :mod:`ridgerider.services`.
"""

from ridgerider.api.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
