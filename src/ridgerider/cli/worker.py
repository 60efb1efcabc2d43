"""``ridgerider worker``: Ray workers serving every running job of a deployment."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from ridgerider.cli.common import DATABASE_URL, REDIS_URL, console, ray_address_option
from ridgerider.core.errors import SettingsError
from ridgerider.services.archive import default_database_url, mask_url


@click.command()
@ray_address_option("Ray cluster to join (e.g. auto, host:6379); default: start a local Ray")
@DATABASE_URL
@REDIS_URL
@click.option(
    "--num-workers", type=click.IntRange(1, 4096), default=1, show_default=True,
    help="worker actors (each a process)",
)  # fmt: skip
@click.option(
    "--num-cpus", type=click.FloatRange(0, 1024), default=1.0, show_default=True,
    help="CPUs Ray reserves per worker",
)  # fmt: skip
@click.option(
    "--num-gpus", type=click.FloatRange(0, 64), default=0.0, show_default=True,
    help="GPUs Ray reserves per worker",
)  # fmt: skip
@click.option(
    "--threads", type=click.IntRange(1, 256), default=1, show_default=True,
    help="torch threads per worker",
)  # fmt: skip
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda[:i] per worker")
@click.option(
    "--lease", "lease_s", type=click.FloatRange(0.1, 86400), default=None,
    help="lease length in seconds (default: each job's)",
)  # fmt: skip
@click.option(
    "--batch", default="1", show_default=True,
    help="branches per claim, or 'auto' (sized so the queue costs ~5 % of a worker's time)",
)  # fmt: skip
def worker(
    ray_address: str | None,
    database_url: str | None,
    redis_url: str | None,
    num_workers: int,
    num_cpus: float,
    num_gpus: float,
    threads: int,
    device: str,
    lease_s: float | None,
    batch: str,
) -> None:
    """Serve every running job with Ray workers until interrupted (Ctrl-C or SIGTERM).

    Workers that die are replaced; their branches come back when their leases expire. This
    process also runs the frontier's reaper (expired leases, wall-time budgets). The URLs never
    travel through Ray: workers on this machine read them from a private file of this process,
    workers on other nodes from their node's RIDGERIDER_DATABASE_URL / RIDGERIDER_REDIS_URL
    (or ..._FILE).
    """
    from ridgerider.workers.ray import WorkerOptions, start_workers

    try:
        if batch != "auto" and not batch.isdecimal():
            raise SettingsError("batch", f"batch: an integer >= 1 or 'auto', got {batch!r}")
        options = WorkerOptions(
            batch="auto" if batch == "auto" else int(batch),
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            torch_threads=threads,
            device=device,
            lease_s=lease_s,
            poll_s=0.2,
        )
    except SettingsError as exc:
        option = {"torch_threads": "threads"}.get(exc.field, exc.field).replace("_", "-")
        why = exc.message.removeprefix(f"{exc.field}: ")
        raise click.UsageError(f"--{option}: {why}") from None
    url = database_url or default_database_url()
    pool = start_workers(url, redis_url, num_workers, ray_address=ray_address, options=options)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    console.print(f"{num_workers} workers serving {mask_url(url)}")
    try:
        while not stop.wait(1.0):
            if pool.wait(0):
                raise click.ClickException(f"worker pool stopped: {pool.error}")
    finally:
        pool.stop()
    console.print(f"stopped ({pool.replaced} workers replaced)")
