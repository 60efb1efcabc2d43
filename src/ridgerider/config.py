"""Every ``RIDGERIDER_*`` setting of the deployment, in one pydantic-settings class.

:class:`Settings` is read at the entry points only (the CLI's commands, ``create_app``, a worker
process's start), never deep inside the library: the library takes plain arguments, so a test
or an embedding program passes what it means instead of patching the environment. Each field is
``RIDGERIDER_<FIELD>`` in the environment (``RIDGERIDER_DATABASE_URL``, ...); command-line
options override the environment. The module imports nothing of ridgerider.

A URL that carries a password can come from a file instead (``RIDGERIDER_DATABASE_URL_FILE``,
``RIDGERIDER_REDIS_URL_FILE``: a Docker or Kubernetes secret), so it is in neither the
environment nor a command line. The settings never echo a value in an error
(``hide_input_in_errors``) and leave the URLs out of their ``repr``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ENV_PREFIX", "URL_SETTINGS", "Settings", "read_url_file"]

ENV_PREFIX = "RIDGERIDER_"

URL_SETTINGS = ("database_url", "redis_url")
"""The settings that may carry a password; each can also be read from ``<setting>_file``."""


def read_url_file(path: Path) -> str:
    """The URL a file holds (surrounding whitespace and the final newline dropped).

    Raises ``ValueError`` naming the file, never its content, when it cannot be read or is
    empty.
    """
    try:
        url = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ValueError(f"{path}: cannot read it ({why})") from None
    if not url:
        raise ValueError(f"{path}: empty")
    return url


class Settings(BaseSettings):
    """Where the archive is, how workers run, authentication and the service's limits."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", hide_input_in_errors=True
    )

    database_url: str | None = Field(
        None, repr=False, description="default: the user's SQLite archive"
    )
    database_url_file: Path | None = Field(
        None, description="a file holding database_url (e.g. a mounted secret)"
    )
    redis_url: str | None = Field(
        None, repr=False, description="Redis frontier (default: the database)"
    )
    redis_url_file: Path | None = Field(
        None, description="a file holding redis_url (e.g. a mounted secret)"
    )
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

    @model_validator(mode="after")
    def _read_url_files(self) -> Settings:
        """Fill ``database_url`` / ``redis_url`` from their files; refuse two different URLs."""
        for name in URL_SETTINGS:
            path = getattr(self, f"{name}_file")
            if path is None:
                continue
            env = ENV_PREFIX + name.upper()
            try:
                url = read_url_file(path)
            except ValueError as exc:
                raise ValueError(f"{env}_FILE {exc}") from None
            given = getattr(self, name)
            if given is None:
                setattr(self, name, url)
            elif given != url:
                raise ValueError(f"{env} and {env}_FILE name different URLs: set one of them")
        return self
