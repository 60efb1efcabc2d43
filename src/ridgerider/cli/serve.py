"""``ridgerider serve``: the HTTP API plus workers, in one process.

Embedded default: a SQLite file in the user's data folder, the database frontier and local
worker threads, on http://127.0.0.1:8000, with no other service. Production: PostgreSQL
(``--database-url``, or ``--database-url-file`` to keep a password out of ``ps``), a Redis
frontier (``--redis-url``) and workers elsewhere (``--workers 0`` makes an API-only node).
SIGINT/SIGTERM shut down gracefully: the workers finish the branch in hand (so every lease is
completed or released) before the process exits.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ridgerider.cli.common import (
    DATABASE_URL,
    REDIS_URL,
    console,
    ray_address_option,
    usage_error,
)

if TYPE_CHECKING:  # the server loads when it starts, so `serve --help` stays light
    from ridgerider.services.archive import Archive
    from ridgerider.workers.pools import WorkerPool

__all__ = ["serve"]

LOOPBACK = ("localhost",)


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--dev", is_flag=True, help="development mode: no tokens needed, loopback only")
@DATABASE_URL
@REDIS_URL
@ray_address_option("Ray actors on this cluster run the workers ('local': a private local Ray)")
@click.option(
    "--workers",
    type=click.IntRange(0, 256),
    default=2,
    show_default=True,
    help="workers to start (0: API only)",
)
@click.option(
    "--worker-threads",
    is_flag=True,
    help="run the workers as threads of this process (default: one process each)",
)
@click.option("--log-level", default="info", show_default=True)
def serve(
    host: str,
    port: int,
    dev: bool,
    database_url: str | None,
    redis_url: str | None,
    ray_address: str | None,
    workers: int,
    worker_threads: bool,
    log_level: str,
) -> None:
    """Serve the API (and run workers) until interrupted."""
    import uvicorn

    from ridgerider.api import create_app
    from ridgerider.config import Settings
    from ridgerider.core.threads import use_compute_threads

    if dev and not _is_loopback(host):
        usage_error(f"--host: --dev serves without authentication, so only loopback ({host!r})")
    pool_factory: Callable[[Archive, Any], WorkerPool | None] | None = None
    if ray_address is not None:
        if importlib.util.find_spec("ridgerider.workers.ray") is None:
            usage_error("--ray-address: Ray workers are not part of this installation")
        pool_factory = _ray_pool(ray_address)
    use_compute_threads()
    settings = Settings(
        database_url=database_url,  # the options read any file already
        database_url_file=None,
        redis_url=redis_url,
        redis_url_file=None,
        dev=dev,
        workers=workers,
        worker_processes=not worker_threads,
    )
    app = create_app(settings, pool_factory=pool_factory)
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    mode = "development mode, no authentication" if dev else "bearer tokens required"
    console.print(f"ridgerider serving on http://{host}:{port} ({mode}, {workers} workers)")
    # Keep-alive well past any client's pause between requests: with uvicorn's default of 5 s a
    # client can send on a connection in the instant the server closes it (a dropped request).
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=30,
        timeout_keep_alive=75,
    )


def _ray_pool(address: str) -> Callable[[Archive, Any], WorkerPool | None]:
    """Start the service's workers as Ray actors on the cluster at ``address``."""

    def start(archive: Archive, settings: Any) -> WorkerPool | None:
        from ridgerider.services.archive import default_database_url
        from ridgerider.workers.pools import start_ray_workers

        if settings.workers == 0:
            return None
        url = settings.database_url or default_database_url()
        return start_ray_workers(url, settings.redis_url, settings.workers, address)

    return start
