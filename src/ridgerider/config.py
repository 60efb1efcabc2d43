"""Every ``RIDGERIDER_*`` setting of the deployment, in one pydantic-settings class.

:class:`Settings` is read at the entry points only (the CLI's commands, ``create_app``, a worker
process's start), never deep inside the library: the library takes plain arguments, so a test
or an embedding program passes what it means instead of patching the environment. Each field is
``RIDGERIDER_<FIELD>`` in the environment (``RIDGERIDER_DATABASE_URL``, ...); command-line
options override the environment. The module imports nothing of ridgerider.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ENV_PREFIX", "Settings"]

ENV_PREFIX = "RIDGERIDER_"


class Settings(BaseSettings):
    """Where the archive is, how workers run, authentication and the service's limits."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    database_url: str | None = Field(None, description="default: the user's SQLite archive")
    redis_url: str | None = Field(None, description="Redis frontier (default: the database)")
    ray_address: str | None = Field(
        None, description="Ray cluster for workers (e.g. auto, host:6379; 'local': a private Ray)"
    )
    dev: bool = Field(False, description="development mode: no authentication")
    workers: int = Field(1, ge=0, le=256, description="in-process worker threads (0: API only)")
    worker_processes: bool = Field(
        False, description="run the workers as processes (else threads of this process)"
    )
    worker_poll_s: float = Field(0.1, gt=0, le=10)
    lease_s: float | None = Field(None, gt=0, le=3600)
    max_body_bytes: int = Field(1 << 20, ge=1024, le=1 << 30)
    max_params: int = Field(1_000_000, ge=1)
    max_exact_params: int = Field(8192, ge=1)
    data_root: Path | None = Field(
        None, description="the only folder jobs may read files from (none: no local files)"
    )
    max_page: int = Field(1000, ge=1, le=100_000)
    api_threads: int = Field(
        4,
        ge=1,
        le=256,
        description="threads serving blocking route code (fewer: less lock and GIL contention)",
    )
    submit_concurrency: int = Field(
        2, ge=1, le=256, description="submissions validated (MIS found) at once; others wait"
    )
    crossplay_max_runs: int = Field(
        4, ge=1, le=10_000, description="cross-play runs one user may have queued or running"
    )
    events_poll_s: float = Field(0.5, gt=0, le=60)
    shutdown_timeout_s: float = Field(60.0, ge=0)
