"""Server fixtures for the deployment tests (skipped, saying why, where a server is absent)."""

from services.conftest import pg_server, redis_server  # noqa: F401 (fixtures)
