"""Every ``RIDGERIDER_*`` setting of the deployment, in one pydantic-settings class.

:class:`Settings` is read at the entry points only (the CLI's commands, ``create_app``, a worker
process's start), never deep inside the library: the library takes plain arguments, so a test
or an embedding program passes what it means instead of patching the environment. Each field is
``RIDGERIDER_<FIELD>`` in the environment (``RIDGERIDER_DATABASE_URL``, ...); command-line
options override the environment. The module imports nothing of ridgerider.

A config file (TOML) gives defaults below the environment: its ``[settings]`` table holds these
fields, and a table per command (``[run]``, ``[serve]``, ...) holds defaults for that command's
options (read by the CLI). It is ``$RIDGERIDER_CONFIG`` (``ridgerider --config FILE`` sets it
for the command and what it starts), else ``config.toml`` in the user's config folder
(``~/.config/ridgerider/`` on Linux) when it exists; ``RIDGERIDER_CONFIG=""`` reads none.
Precedence, highest first: command-line options and arguments of ``Settings(...)``, the
environment, the config file, the built-in defaults.

A URL that carries a password can come from a file instead (``RIDGERIDER_DATABASE_URL_FILE``,
``RIDGERIDER_REDIS_URL_FILE``: a Docker or Kubernetes secret), so it is in neither the
environment nor a command line. The settings never echo a value in an error
(``hide_input_in_errors``) and leave the URLs out of their ``repr``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from platformdirs import user_config_path
from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

__all__ = [
    "CONFIG_VARIABLE",
    "ENV_PREFIX",
    "URL_SETTINGS",
    "ConfigFileError",
    "Settings",
    "config_path",
    "read_config",
    "read_url_file",
]

ENV_PREFIX = "RIDGERIDER_"

CONFIG_VARIABLE = "RIDGERIDER_CONFIG"
"""The config file's path (not a field: the file cannot say where it is); ``""``: none."""


class ConfigFileError(ValueError):
    """A config file that cannot be used; the message names the file and what is wrong."""


def config_path() -> Path | None:
    """The config file to read: ``$RIDGERIDER_CONFIG``, else the user's one if it exists.

    Raises :class:`ConfigFileError` when ``$RIDGERIDER_CONFIG`` names a missing file (a file
    asked for by name is never silently skipped).
    """
    named = os.environ.get(CONFIG_VARIABLE)
    if named is not None:
        if not named:
            return None
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigFileError(f"{CONFIG_VARIABLE}={named}: no such file")
        return path
    default = user_config_path("ridgerider") / "config.toml"
    return default if default.is_file() else None


def read_config(path: Path | None = None) -> dict[str, Any]:
    """The tables of the config file (``path``, default :func:`config_path`); ``{}`` if none.

    Raises :class:`ConfigFileError` for a file that is not TOML, a top-level key that is not a
    table, or a ``[settings]`` key that is not a field of :class:`Settings`.
    """
    path = path if path is not None else config_path()
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"{path}: cannot read it ({type(exc).__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: not TOML ({exc})") from None
    for key, value in data.items():
        if not isinstance(value, dict):
            raise ConfigFileError(f"{path}: {key} must be a table ([{key}])")
    unknown = sorted(set(data.get("settings", {})) - set(Settings.model_fields))
    if unknown:
        fields = ", ".join(Settings.model_fields)
        raise ConfigFileError(f"{path}: [settings] {unknown[0]} is not a setting ({fields})")
    return data


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
    worker_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="scheduling niceness of serve's worker processes (0: as the API's)",
    )
    lease_s: float | None = Field(None, gt=0, le=3600)
    speculation: int = Field(
        32,  # services.frontier.speculation.DEFAULT_SPECULATION (tests/test_config.py)
        ge=0,
        le=1_000_000,
        description="rides a dfs/priority/random job may have ahead of its turn (0: none)",
    )
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
    events_poll_s: float = Field(
        0.5, gt=0, le=60, description="how often a job's one event poller reads the archive"
    )
    events_heartbeat_s: float = Field(
        15.0, gt=0, le=3600, description="a comment line on every event stream this often"
    )
    events_queue: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="events one stream may fall behind before it is dropped (told to reconnect)",
    )
    events_send_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="a stream whose client takes no bytes this long closes"
    )
    shutdown_timeout_s: float = Field(60.0, ge=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then the config file's ``[settings]`` table."""
        table = read_config().get("settings", {})
        from_file = InitSettingsSource(settings_cls, init_kwargs=table)
        return init_settings, env_settings, dotenv_settings, file_secret_settings, from_file

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
