"""How Ray workers find the archive's URLs without the URLs travelling through Ray.

Whatever a driver gives a Ray actor (constructor and task arguments, ``runtime_env``) is Ray
metadata: the GCS keeps each actor's creation task, arguments included, and with GCS fault
tolerance persists it to Redis; ``runtime_env`` (its ``env_vars`` too) is listed by ``ray list
actors --detail`` and written to Ray's logs. So the archive's URLs (which may carry a password)
never go there. An actor gets a :class:`UrlSource` instead: the URL with its passwords masked
(``shown``) and the path of a file holding the URL (``path``), and reads the URL in its own
process:

1. from ``path``, when the file is on the actor's node. The driver writes it (:class:`Handover`:
   a file readable by its user only, in a private folder on ``/dev/shm`` where there is one, so
   in memory; deleted when the pool stops). Every actor of a local Ray, or on the driver's node
   of a cluster, reads it there.
2. otherwise from its node's configuration, read as :class:`~ridgerider.config.Settings` in the
   actor's process: ``RIDGERIDER_DATABASE_URL`` / ``RIDGERIDER_REDIS_URL``, or
   ``RIDGERIDER_DATABASE_URL_FILE`` / ``RIDGERIDER_REDIS_URL_FILE`` (a mounted secret). Ray's
   worker processes inherit the environment of the node's raylet, so the operator sets these on
   every node of a cluster (the container spec of a KubeRay worker group, the compose service
   that runs ``ray start``), as for any other secret of a Ray application.

The URL found must be the driver's with the passwords masked: an actor never serves another
archive than its driver (a node configured for another database fails, naming both URLs
masked). Every URL goes this way, with a password or not: whether a URL carries a secret is
not left to a pattern.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from ridgerider.config import ENV_PREFIX, Settings, read_url_file
from ridgerider.services.archive import mask_url

__all__ = ["Handover", "UrlSource", "WorkerConfigError"]

SHM = Path("/dev/shm")
"""Where the driver's handover files go when it is writable (memory, not disk)."""
PREFIX = "ridgerider-handover-"
"""A handover folder is ``<PREFIX><pid of its driver>-<random>``."""


class WorkerConfigError(RuntimeError):
    """A Ray worker cannot find the URL its driver uses; the message masks every password."""


@dataclass(frozen=True)
class UrlSource:
    """Where an actor finds one URL of the archive; safe to send through Ray.

    Args:
        setting: ``"database_url"`` or ``"redis_url"``.
        shown: the driver's URL with its passwords masked.
        path: a file holding the URL on the driver's node.
    """

    setting: str
    shown: str
    path: str

    def resolve(self) -> str:
        """The URL, read in this process: from ``path`` if here, else this node's settings.

        Raises :class:`WorkerConfigError` when neither is there, or when the URL found is not
        the driver's (compared with passwords masked).
        """
        env = ENV_PREFIX + self.setting.upper()
        if os.path.exists(self.path):
            try:
                url = read_url_file(Path(self.path))
            except ValueError as exc:
                raise WorkerConfigError(f"{self.setting}: {exc}") from None
            where = f"the driver's file {self.path}"
        else:
            try:
                found: str | None = getattr(Settings(), self.setting)
            except ValidationError as exc:
                why = "; ".join(str(e["msg"]) for e in exc.errors())
                raise WorkerConfigError(f"{self.setting}: this node's settings: {why}") from None
            if found is None:
                raise WorkerConfigError(
                    f"{self.setting} {self.shown}: the URL is never sent through Ray, and this "
                    f"node has neither the driver's file nor {env} or {env}_FILE"
                )
            url, where = found, f"this node's {env}"
        if mask_url(url) != self.shown:
            raise WorkerConfigError(
                f"{self.setting}: {where} names {mask_url(url)}, the driver {self.shown}"
            )
        return url


class Handover:
    """The driver's side: a :class:`UrlSource` per URL, and the private files behind them.

    ``Handover(database_url, redis_url)`` writes each URL to a file of its own (mode 0600, in a
    private folder of mode 0700, named after this process); :meth:`close` deletes them. A driver
    killed before it could (SIGKILL) leaves its folder behind: the next handover on the machine
    deletes the folders of processes that are gone.
    """

    def __init__(self, database_url: str, redis_url: str | None = None) -> None:
        self._folder: Path | None = None
        try:
            self.database = self._source("database_url", database_url)
            self.redis = None if redis_url is None else self._source("redis_url", redis_url)
        except BaseException:
            self.close()
            raise

    def _source(self, setting: str, url: str) -> UrlSource:
        if self._folder is None:
            base = SHM if SHM.is_dir() and os.access(SHM, os.W_OK) else Path(tempfile.gettempdir())
            _sweep(base)
            self._folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base))
        path = self._folder / setting
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(url)
        return UrlSource(setting, mask_url(url), str(path))

    def close(self) -> None:
        """Delete the files (actors started later find the URL in their node's settings)."""
        if self._folder is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self._folder)
            self._folder = None


def _sweep(base: Path) -> None:
    """Delete the handover folders (of this user) whose driver process is gone."""
    for folder in base.glob(f"{PREFIX}*"):
        pid = folder.name.removeprefix(PREFIX).split("-", 1)[0]
        try:
            if not pid.isdecimal() or folder.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # gone meanwhile, or a process of another user (alive)
            continue
