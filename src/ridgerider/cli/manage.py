"""``ridgerider cancel | delete | export``: manage stored jobs and take their data out.

They work on the archive ``run`` writes to (``--database-url``, as for ``jobs``); an unknown
job exits 2 naming it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import click

from ridgerider.cli.common import DATABASE_URL, console, job_call, usage_error

__all__ = ["cancel", "delete", "export"]


@click.command()
@click.argument("job", type=click.IntRange(1))
@DATABASE_URL
def cancel(job: int, database_url: str | None) -> None:
    """Cancel a queued or running job (its finished nodes stay readable).

    A finished job is left as it is (exit 1). Workers riding its branches have their results
    refused; ``resume`` continues a cancelled job.
    """
    from ridgerider.workers import manage

    done, status = job_call(manage.cancel, job, database_url=database_url)
    if not done:
        console.print(f"job {job} is {status}: nothing to cancel")
        sys.exit(1)
    console.print(f"job {job} cancelled")


@click.command()
@click.argument("job", type=click.IntRange(1))
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
@DATABASE_URL
def delete(job: int, yes: bool, database_url: str | None) -> None:
    """Delete a job with its nodes, solutions, parameters and events (asks first).

    A queued or running job is cancelled first, so no worker can write to it afterwards.
    """
    from ridgerider.workers import manage

    record = job_call(manage.get, job, database_url=database_url)
    what = f"job {job} ({record.problem}, {record.status}, {record.nodes} nodes)"
    if not yes and not click.confirm(f"Delete {what}?", default=False, err=True):
        console.print("nothing deleted")
        sys.exit(1)
    job_call(manage.delete, job, database_url=database_url)
    console.print(f"deleted {what}")


@click.command()
@click.argument("job", type=click.IntRange(1))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet", "json"]),
    default="csv",
    show_default=True,
    help="parquet needs pyarrow installed",
)
@click.option(
    "--what",
    type=click.Choice(["nodes", "solutions"]),
    default="nodes",
    show_default=True,
    help="every node of the tree, or its solutions",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="the file to write (default: standard output)",
)
@DATABASE_URL
def export(job: int, fmt: str, what: str, output: Path | None, database_url: str | None) -> None:
    """Write a job's nodes or solutions as CSV, Parquet or JSON.

    One row per node (or solution): id, parent, key (the fingerprint), depth, eigenvalue,
    loss, steps, end reason, whether it is a solution, and a ``metric.<name>`` column per
    metric; the CSV is that of ``GET /jobs/{id}/nodes.csv``.
    """
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        usage_error("--format parquet needs the package pyarrow, which is not installed")
    if output is not None and not output.parent.exists():
        usage_error(f"--output: folder {str(output.parent)!r} does not exist")
    if fmt == "parquet" and output is None and sys.stdout.isatty():
        usage_error("--format parquet is binary: give --output FILE or redirect stdout")
    from ridgerider.workers import manage

    stream = sys.stdout.buffer
    rows = job_call(manage.export, job, fmt, what, stream, path=output, database_url=database_url)
    stream.flush()
    if output is not None:
        console.print(f"{rows} {what} of job {job} written to {output}")
