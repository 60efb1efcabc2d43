"""Where an archive lives: its URL (the embedded default, masked for printing) and its storage.

The storage alone, without a frontier or the engine: reading jobs (``ridgerider jobs``) needs
no torch, so this module and :mod:`ridgerider.services.storage` import none
(``services.archive`` adds the frontier for everything that runs jobs).
"""

from __future__ import annotations

import re
from pathlib import Path

from platformdirs import user_data_dir

from ridgerider.services.storage.session import Database
from ridgerider.services.storage.sql import SQLStorage

__all__ = ["ArchiveUnavailableError", "default_database_url", "mask_url", "open_storage"]

_PASSWORD = re.compile(r"(?P<head>://[^/@:]*):(?P<password>[^/@]*)@")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&][^=&#]*password=)[^&#]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***`` (also for URLs nothing parses).

    Both places a URL can carry one are masked: ``user:password@`` and query parameters named
    ``*password`` (``postgresql://u@host/db?password=...&sslpassword=...``, which libpq accepts).
    """
    masked = _PASSWORD.sub(lambda m: f"{m['head']}:***@", url)
    return _QUERY_PASSWORD.sub(lambda m: f"{m['head']}***", masked)


class ArchiveUnavailableError(RuntimeError):
    """The database or Redis at a URL cannot be used; the message names it, password masked.

    ``option`` is the setting that named the URL (``database_url`` or ``redis_url``).
    """

    def __init__(self, option: str, url: str, reason: str) -> None:
        first = reason.strip().splitlines()[0] if reason.strip() else "unavailable"
        self.option = option
        self.url = mask_url(url)
        self.reason = mask_url(first)
        super().__init__(f"{option} {self.url}: {self.reason}")


def default_database_url() -> str:
    """``sqlite:///<user data folder>/ridgerider/archive.db`` (the embedded default)."""
    return f"sqlite:///{Path(user_data_dir('ridgerider')) / 'archive.db'}"


def open_storage(database_url: str | None = None, *, pool_size: int = 5) -> SQLStorage:
    """Open (and migrate) the archive's storage at ``database_url`` (default: the embedded one).

    Raises :class:`ArchiveUnavailableError` naming the URL (password masked) for a bad scheme,
    a refused connection or a failed migration.
    """
    url = database_url or default_database_url()
    try:
        return SQLStorage(Database(url, pool_size=pool_size))
    except Exception as exc:  # a bad scheme, a refused connection, a failed migration
        raise ArchiveUnavailableError("database_url", url, str(exc)) from exc


def location_of(storage: SQLStorage) -> str:
    """Where ``storage`` is, as commands print it: the SQLite file, or the URL, password masked."""
    u = storage.db.url
    return str(u.database) if storage.db.is_sqlite else u.render_as_string(hide_password=True)
