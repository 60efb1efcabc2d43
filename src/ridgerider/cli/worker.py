"""``ridgerider worker``: Ray workers serving every running job of a deployment."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from ridgerider.cli.common import (
    DATABASE_URL,
    REDIS_URL,
    config_default,
    console,
    ray_address_option,
)

if TYPE_CHECKING:
    from ridgerider.cli.intake import Intake
    from ridgerider.workers.ray import WorkerOptions, WorkerPool


@click.command()
@ray_address_option("Ray cluster to join (e.g. auto, host:6379); default: start a local Ray")
@DATABASE_URL
@REDIS_URL
@click.option(
    "--num-workers", type=click.IntRange(0, 4096), default=1, show_default=True,
    help="worker actors (each a process)",
)  # fmt: skip
@click.option(
    "--gpu-workers", type=click.IntRange(0, 4096), default=0, show_default=True,
    help="more worker actors, each reserving one GPU and serving GPU jobs on CUDA",
)  # fmt: skip
@click.option(
    "--num-cpus", type=click.FloatRange(0, 1024), default=1.0, show_default=True,
    help="CPUs Ray reserves per worker",
)  # fmt: skip
@click.option(
    "--num-gpus", type=click.FloatRange(0, 64), default=0.0, show_default=True,
    help="GPUs Ray reserves per --num-workers worker (> 0: they serve GPU jobs)",
)  # fmt: skip
@click.option(
    "--threads", type=click.IntRange(1, 256), default=1, show_default=True,
    help="torch threads per worker",
)  # fmt: skip
@click.option(
    "--device", default=None,
    help="cpu or cuda[:i] per worker (default: cuda with --num-gpus, else cpu)",
)  # fmt: skip
@click.option(
    "--lease", "lease_s", type=click.FloatRange(0.1, 86400), default=config_default("lease_s"),
    help="lease length in seconds (default: $RIDGERIDER_LEASE_S, else each job's)",
)  # fmt: skip
@click.option(
    "--speculation", type=click.IntRange(0, 1_000_000), default=config_default("speculation"),
    help="rides a dfs/priority/random job may have ahead of its turn (0: none)",
)  # fmt: skip
@click.option(
    "--batch", default="auto", show_default=True,
    help="branches per claim, or 'auto': sized so the queue costs ~5 % of a worker's time "
    "(a job's exact branches of one claim are ridden together)",
)  # fmt: skip
@click.option(
    "--ray/--no-ray", "use_ray", default=True, show_default=True,
    help="Ray actors, or plain processes of this machine (--no-ray: no Ray beside them; "
    "CPU jobs only)",
)  # fmt: skip
def worker(
    ray_address: str | None,
    database_url: str | None,
    redis_url: str | None,
    num_workers: int,
    gpu_workers: int,
    num_cpus: float,
    num_gpus: float,
    threads: int,
    device: str | None,
    lease_s: float | None,
    speculation: int,
    batch: str,
    use_ray: bool,
) -> None:
    """Serve every running job with Ray workers until interrupted (Ctrl-C or SIGTERM).

    Workers that reserve GPUs (--num-gpus > 0, or the --gpu-workers) serve the jobs submitted
    with accelerator "gpu", and only those, computing on CUDA; the others serve CPU jobs. Ray
    places each where its resources are, so on a cluster GPU jobs ride on the GPU nodes.

    While it runs, `ridgerider run`, `resume` and `extend --workers N` on this machine leave
    their jobs on the same archive to these workers (warm: no Ray to start) instead of starting
    their own (`--no-pool` to start them anyway); `run` hands over its whole request, so it
    loads no engine either.

    `--no-ray` runs them as plain processes of this machine instead (no Ray started beside
    them: lighter on a laptop; CPU jobs only).

    Workers that die are replaced; their branches come back when their leases expire. This
    process also runs the frontier's reaper (expired leases, wall-time budgets). The URLs never
    travel through Ray: workers on this machine read them from a private file of this process,
    workers on other nodes from their node's RIDGERIDER_DATABASE_URL / RIDGERIDER_REDIS_URL
    (or ..._FILE).
    """
    from ridgerider.services.archive import default_database_url

    if num_workers + gpu_workers == 0:
        raise click.UsageError("--num-workers, --gpu-workers: at least one worker")
    common = {"batch": batch, "num_cpus": num_cpus, "threads": threads, "lease_s": lease_s,
              "speculation": speculation}  # fmt: skip
    groups = [
        (n, _options(num_gpus=g, device=d, **common))
        for n, g, d in ((num_workers, num_gpus, device), (gpu_workers, 1.0, None))
        if n > 0
    ]
    url = database_url or default_database_url()
    if not use_ray:
        needs_ray = {
            "--ray-address": ray_address is not None,
            "--gpu-workers": gpu_workers > 0,
            "--num-gpus": num_gpus > 0,
            "--device": device not in (None, "cpu"),
        }
        for option, given in needs_ray.items():
            if given:
                raise click.UsageError(f"{option}: needs Ray (GPU jobs, clusters); drop --no-ray")
        _serve_without_ray(url, redis_url, num_workers, groups[0][1])
        return
    _serve_with_ray(url, redis_url, ray_address, groups)


def _serve_with_ray(
    url: str, redis_url: str | None, ray_address: str | None, groups: list[tuple[int, Any]]
) -> None:
    """Ray actors, one group per ``(count, WorkerOptions)``, until SIGTERM or Ctrl-C."""
    from ridgerider.services.archive import mask_url
    from ridgerider.workers.ray import start_workers

    pools = []
    try:
        for i, (n, options) in enumerate(groups):  # one reaper is enough
            pool = start_workers(url, redis_url, n, ray_address=ray_address, options=options,
                                 reaper=i == 0)  # fmt: skip
            pools.append(pool)
            kind = f"{options.accelerator} jobs on {options.compute_device}"
            console.print(f"{n} workers ({kind}) serving {mask_url(url)}")
        counts = {"cpu": 0, "gpu": 0}
        for n, options in groups:
            counts[options.accelerator] += n
        with _registered(url, redis_url, counts):
            _serve_until_stopped(pools)
    finally:
        for pool in reversed(pools):  # the first one shuts down a Ray it started
            pool.stop()
    console.print(f"stopped ({sum(p.replaced for p in pools)} workers replaced)")


def _options(
    *, batch: str, num_cpus: float, num_gpus: float, threads: int, device: str | None,
    lease_s: float | None, speculation: int,
) -> WorkerOptions:  # fmt: skip
    """The workers' options; exit 2 naming the option that is wrong."""
    from ridgerider.core.errors import SettingsError
    from ridgerider.workers.ray import WorkerOptions

    try:
        if batch != "auto" and not batch.isdecimal():
            raise SettingsError("batch", f"batch: an integer >= 1 or 'auto', got {batch!r}")
        return WorkerOptions(
            batch="auto" if batch == "auto" else int(batch),
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            torch_threads=threads,
            device=device,
            lease_s=lease_s,
            speculation=speculation,
            poll_s=0.2,
        )
    except SettingsError as exc:
        option = {"torch_threads": "threads"}.get(exc.field, exc.field).replace("_", "-")
        why = exc.message.removeprefix(f"{exc.field}: ")
        raise click.UsageError(f"--{option}: {why}") from None


def _serve_until_stopped(pools: list[WorkerPool]) -> None:
    """Wait for SIGTERM or Ctrl-C; a pool that gives up ends the command with its error."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.wait(1.0):
        for pool in pools:
            if pool.wait(0):
                raise click.ClickException(f"worker pool stopped: {pool.error}")


@contextlib.contextmanager
def _registered(url: str, redis_url: str | None, counts: dict[str, int]) -> Iterator[None]:
    """The pool registered (``workers.registry``) with its intake (``cli.intake``) meanwhile.

    ``ridgerider run --workers N`` on this machine then hands its jobs to these workers.
    """
    from ridgerider.cli.intake import Intake
    from ridgerider.workers.registry import Registration

    intake: Intake | None = None
    try:
        intake = Intake(url, redis_url, counts)
    except OSError as exc:  # the pool still serves; commands check their requests themselves
        console.print(f"no intake for whole `run` requests ({exc})")
    try:
        path = intake.path if intake is not None else None
        with Registration(url, counts.get("cpu", 0), counts.get("gpu", 0), intake=path):
            yield
    finally:
        if intake is not None:
            intake.close()


def _serve_without_ray(url: str, redis_url: str | None, n: int, options: WorkerOptions) -> None:
    """``--no-ray``: ``n`` supervised processes of this machine, the reaper in this one."""
    from ridgerider.services.archive import mask_url, open_archive
    from ridgerider.workers.processes import start_process_workers

    archive = open_archive(url, redis_url, lease_s=options.lease_s)
    archive.frontier.start_reaper()
    pool = start_process_workers(url, redis_url, n, lease_s=options.lease_s,
                                 speculation=options.speculation, batch=options.batch,
                                 threads=options.torch_threads, poll_s=options.poll_s)  # fmt: skip
    console.print(f"{n} worker processes (cpu jobs on cpu) serving {mask_url(url)}")
    try:
        with _registered(url, redis_url, {"cpu": n}):
            _serve_until_stopped([])  # the process pool replaces its dead workers: no give-up
    finally:
        pool.stop()
        archive.close()
    console.print(f"stopped ({pool.restarts} workers replaced)")
