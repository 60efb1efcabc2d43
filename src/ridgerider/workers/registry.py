"""Running worker pools of this machine, found by the archive they serve.

``ridgerider worker`` starts its workers once and keeps them warm across jobs; while it runs it
registers here, and ``ridgerider run``/``resume``/``extend --workers N`` leave their job to it
instead of starting Ray workers of their own (a local Ray and its actors take 5-22 s before the
first node on a 2-core machine). The job's tree is the same either way: every worker rides
through the same frontier.

A registration is a small JSON file in ``<user data folder>/ridgerider/pools/``, named by a
hash of the archive's URL and the pool's pid; the URL itself (it may hold a password) is never
written. It holds the pid, the pool's CPU and GPU worker counts, the path of its intake socket
(where ``ridgerider run`` hands it whole requests, ``cli.intake``) and a heartbeat rewritten
every :data:`BEAT_S` seconds. A pool that stops removes its file; one killed outright leaves it
behind, and a file whose heartbeat is older than :data:`STALE_S` or whose pid is gone counts as
no pool (and is removed by the next look-up). Like Ray's own session files this is local to one
machine and one user: pools elsewhere are reached by submitting to the service instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from platformdirs import user_data_dir
from sqlalchemy.engine import make_url

__all__ = ["BEAT_S", "STALE_S", "PoolEntry", "Registration", "find_pools", "pools_dir"]

log = logging.getLogger(__name__)

BEAT_S = 2.0
"""How often a running pool rewrites its heartbeat."""
STALE_S = 10.0
"""A registration whose heartbeat is older than this is a pool that died."""


def pools_dir() -> Path:
    """Where registrations live (``$XDG_DATA_HOME/ridgerider/pools`` on Linux)."""
    return Path(user_data_dir("ridgerider")) / "pools"


def archive_key(database_url: str) -> str:
    """A stable name for the archive at ``database_url`` (SQLite paths made absolute)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        url = url.set(database=str(Path(url.database).resolve()))
    text = url.render_as_string(hide_password=False)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class PoolEntry:
    """One running pool: its process and how many workers serve CPU and GPU jobs."""

    pid: int
    cpu_workers: int
    gpu_workers: int
    started: float
    beat: float
    intake: str | None = None
    """The pool's intake socket (``cli.intake``), if it takes whole ``run`` requests."""

    def workers(self, accelerator: str) -> int:
        """Workers serving jobs of ``accelerator`` (``cpu`` or ``gpu``)."""
        return self.gpu_workers if accelerator == "gpu" else self.cpu_workers


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process with that pid
        return False
    return True


def find_pools(database_url: str, accelerator: str | None = "cpu") -> list[PoolEntry]:
    """The live pools serving ``database_url`` with workers for ``accelerator`` jobs (any: None)."""
    found: list[PoolEntry] = []
    now = time.time()
    for path in pools_dir().glob(f"{archive_key(database_url)}-*.json"):
        try:
            entry = PoolEntry(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # being written, or not ours
        if now - entry.beat > STALE_S or not _alive(entry.pid):
            path.unlink(missing_ok=True)
            continue
        total = entry.cpu_workers + entry.gpu_workers
        if (entry.workers(accelerator) if accelerator else total) > 0:
            found.append(entry)
    return found


class Registration:
    """The pool of this process, registered for ``database_url`` until :meth:`close`.

    Args:
        database_url: the archive the pool serves.
        cpu_workers: workers serving ``cpu`` jobs.
        gpu_workers: workers serving ``gpu`` jobs.
        intake: the pool's intake socket, if it has one.
    """

    def __init__(
        self,
        database_url: str,
        cpu_workers: int,
        gpu_workers: int = 0,
        intake: str | None = None,
    ) -> None:
        pid = os.getpid()
        self.path = pools_dir() / f"{archive_key(database_url)}-{pid}.json"
        now = time.time()
        self._entry = PoolEntry(pid, cpu_workers, gpu_workers, now, now, intake)
        self._stop = threading.Event()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write()
        self._beat = threading.Thread(target=self._run, name="pool-registration", daemon=True)
        self._beat.start()

    def _write(self) -> None:
        entry = PoolEntry(**{**asdict(self._entry), "beat": time.time()})
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(entry)))
        tmp.replace(self.path)  # readers never see half a file

    def _run(self) -> None:
        while not self._stop.wait(BEAT_S):
            try:
                self._write()
            except OSError:
                log.warning("pool registration %s not refreshed", self.path, exc_info=True)

    def close(self) -> None:
        """Unregister: new jobs no longer wait for this pool."""
        self._stop.set()
        self._beat.join()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Registration:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
