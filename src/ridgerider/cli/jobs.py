"""``ridgerider run | jobs | show | resume | extend | problems``: searches as stored jobs.

Every search is a stored job (``--database-url``, default a SQLite file in the user's data
folder, or ``$RIDGERIDER_DATABASE_URL``), so ``jobs``, ``show``, ``resume`` and ``extend`` work
on what ``run`` left behind, even if its process died.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

import click
from rich.table import Table

from ridgerider.cli.choices import ORDERS, PRESETS
from ridgerider.cli.common import (
    DATABASE_URL,
    JSON_PATH,
    POOL,
    QUIET,
    RAY_ADDRESS,
    REDIS_URL,
    WORKERS,
    check_json_path,
    check_labels,
    console,
    job_call,
    out,
    ray_plan,
    usage_error,
)
from ridgerider.cli.report import (
    JobRef,
    go_on,
    print_report,
    run_with_progress,
    say_succeeded,
    write_json,
)
from ridgerider.schemas.enums import JobStatus

__all__ = ["extend", "jobs", "problems", "resume", "run", "show"]


@click.command()
@click.argument("problem")
@click.option("--set", "params", multiple=True, metavar="KEY=VALUE", help="problem parameter")
@click.option(
    "--setting",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="any search setting (max_depth=none: no depth limit)",
)
@click.option(
    "--preset",
    type=click.Choice(PRESETS),
    default=None,
    help="a paper experiment's stated settings (options given override them)",
)
@click.option(
    "--method",
    type=click.Choice(["exact", "approx", "ood"]),
    default=None,
    help="exact (dense Hessian), approx (Hessian-vector products only) or ood (the paper's "
    "out-of-distribution extension, problems with training environments)",
)
@click.option("--order", type=click.Choice(ORDERS), default=None, help="search order")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default cpu)")
@click.option("--max-nodes", type=click.IntRange(1, 10_000_000), default=None)
@click.option("--max-steps", type=click.IntRange(0, 10**9), default=None)
@click.option(
    "--wall-time",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="budget in seconds",
)
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True)
@click.option("--name", default=None, help="a label for the job (find it with jobs --name)")
@click.option("--tag", "tags", multiple=True, help="a label to filter by (repeatable)")
@WORKERS
@RAY_ADDRESS
@POOL
@DATABASE_URL
@REDIS_URL
@JSON_PATH
@QUIET
def run(
    problem: str,
    params: tuple[str, ...],
    settings: tuple[str, ...],
    preset: str | None,
    method: str | None,
    order: str | None,
    device: str | None,
    max_nodes: int | None,
    max_steps: int | None,
    wall_time: float | None,
    seed: int,
    name: str | None,
    tags: tuple[str, ...],
    workers: int,
    ray_address: str | None,
    use_pool: bool,
    database_url: str | None,
    redis_url: str | None,
    json_path: Path | None,
    quiet: bool,
) -> None:
    """Run a Ridge Rider search on PROBLEM, store it as a job and print its solutions.

    ``--workers N`` rides branches on N Ray workers (same tree and solutions as ``--workers 0``,
    which rides them in this process), or on a running ``ridgerider worker`` pool that serves
    the same archive (``--no-pool``: start the N workers anyway). ``--preset paper-fig2``
    (``paper-fig3``, ``paper-fig6``, ``paper-mnist``) starts from the settings the paper states
    for that figure (``ridgerider.problems.presets``).
    """
    from ridgerider.cli.request import RunRequest

    name, tags = check_labels(name, tags)
    check_json_path(json_path)
    shortcuts = {"method": method, "order": order, "device": device}
    shortcuts |= {"max_nodes": max_nodes, "max_steps": max_steps}
    request = RunRequest(problem, params, settings, shortcuts, preset, seed, wall_time, name, tags,
                         key=secrets.token_hex(16), cwd=os.getcwd())  # fmt: skip
    if workers > 0 and use_pool and ray_address is None:
        from ridgerider.cli.pooled import run_on_pool  # a warm pool takes it all: no engine here

        urls = {"database_url": database_url, "redis_url": redis_url}
        if run_on_pool(request, workers, json_path=json_path, quiet=quiet, **urls):
            return
    from ridgerider.core.threads import use_compute_threads
    from ridgerider.workers import runner

    prob, rr = request.checked()
    plan = ray_plan(workers, ray_address, use_pool=use_pool)
    use_compute_threads()
    ref = JobRef()

    def created(job_id: int, location: str) -> None:
        ref.id = job_id
        console.print(f"job {job_id} stored in {location}")

    run_with_progress(
        f"{prob.name} nodes",
        rr.max_nodes,
        runner.run,
        request.submission(prob, rr),
        job=ref,
        json_path=json_path,
        quiet=quiet,
        database_url=database_url,
        redis_url=redis_url,
        on_created=created,
        ray=plan,
    )


@click.command()
@click.option(
    "--status",
    type=click.Choice([s.value for s in JobStatus]),
    default=None,
)
@click.option("--name", default=None, help="only jobs whose name contains this (any case)")
@click.option("--tag", default=None, help="only jobs with this tag")
@click.option("--problem", default=None, help="only jobs of this problem")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@DATABASE_URL
def jobs(
    status: str | None,
    name: str | None,
    tag: str | None,
    problem: str | None,
    limit: int,
    as_json: bool,
    database_url: str | None,
) -> None:
    """List stored jobs, newest first.

    Filters combine: ``--name`` matches any part of a job's name (any case), ``--tag``,
    ``--problem`` and ``--status`` match exactly.
    """
    from ridgerider.services.listing import list_jobs  # no engine: starts without torch

    filters = {"name": name, "tag": tag, "problem": problem}
    rows = list_jobs(database_url=database_url, status=status, limit=limit, **filters)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title=f"{len(rows)} jobs")
    for col in ("id", "name", "problem", "status", "nodes", "solutions", "steps", "created"):
        table.add_column(col)
    for r in rows:
        label = (r["name"] or "") + "".join(f" #{t}" for t in r["tags"])
        table.add_row(
            str(r["job_id"]),
            label.strip(),
            r["problem"],
            r["status"] + (f" ({r['stopped_by']})" if r.get("stopped_by") else ""),
            str(r["nodes"]),
            str(r.get("solutions", "")),
            str(r["steps"]),
            r["created_at"][:19],
        )
    out.print(table)


@click.command()
@click.argument("job", type=click.IntRange(1))
@DATABASE_URL
@JSON_PATH
@QUIET
def show(job: int, database_url: str | None, json_path: Path | None, quiet: bool) -> None:
    """Print one stored job with its solutions (the same JSON as ``run``)."""
    from ridgerider.workers import runner

    check_json_path(json_path)
    report = job_call(runner.show, job, database_url=database_url)
    if not quiet:
        print_report(report, json_path)
    write_json(report, json_path, quiet)


@click.command()
@click.argument("job", type=click.IntRange(1))
@WORKERS
@RAY_ADDRESS
@POOL
@DATABASE_URL
@REDIS_URL
@JSON_PATH
@QUIET
def resume(
    job: int,
    workers: int,
    ray_address: str | None,
    use_pool: bool,
    database_url: str | None,
    redis_url: str | None,
    json_path: Path | None,
    quiet: bool,
) -> None:
    """Continue a job whose process died, exactly where it stopped."""
    check_json_path(json_path)
    if workers > 0 and use_pool and ray_address is None:
        from ridgerider.cli.pooled import go_on_pool  # a warm pool takes it: no engine here

        urls = {"database_url": database_url, "redis_url": redis_url}
        if go_on_pool("resume", job, workers, json_path=json_path, quiet=quiet, **urls):
            return
    from ridgerider.workers import runner

    ray_plan(workers, ray_address)  # bad Ray options exit 2 before anything is read
    shown = job_call(runner.show, job, database_url=database_url)
    if shown["status"] == JobStatus.SUCCEEDED:
        say_succeeded(job, shown["stopped_by"])
        if not quiet:
            print_report(shown, json_path)
        write_json(shown, json_path, quiet)
        return
    args = (workers, ray_address, use_pool, database_url, redis_url, json_path, quiet)
    go_on(runner.resume, job, *args)


@click.command()
@click.argument("job", type=click.IntRange(1))
@click.option("--max-nodes", type=click.IntRange(1, 10_000_000), default=None)
@click.option("--max-steps", type=click.IntRange(0, 10**9), default=None)
@WORKERS
@RAY_ADDRESS
@POOL
@DATABASE_URL
@REDIS_URL
@JSON_PATH
@QUIET
def extend(
    job: int,
    max_nodes: int | None,
    max_steps: int | None,
    workers: int,
    ray_address: str | None,
    use_pool: bool,
    database_url: str | None,
    redis_url: str | None,
    json_path: Path | None,
    quiet: bool,
) -> None:
    """Raise a finished job's budgets and run it on to the new ones."""
    if max_nodes is None and max_steps is None:
        usage_error("extend: give the new budget, --max-nodes and/or --max-steps")
    check_json_path(json_path)
    budgets = {"max_nodes": max_nodes, "max_steps": max_steps}
    if workers > 0 and use_pool and ray_address is None:
        from ridgerider.cli.pooled import go_on_pool  # a warm pool takes it: no engine here

        urls = {"database_url": database_url, "redis_url": redis_url}
        if go_on_pool("extend", job, workers, json_path=json_path, quiet=quiet, **urls, **budgets):
            return
    from ridgerider.workers import runner

    args = (workers, ray_address, use_pool, database_url, redis_url, json_path, quiet)
    go_on(runner.extend, job, *args, **budgets)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def problems(as_json: bool) -> None:
    """List the installed problems and their parameters."""
    from ridgerider.problems import available

    registry = available()
    if as_json:
        data = [
            {"name": name, "summary": cls.summary, "params": cls.params_schema()}
            for name, cls in sorted(registry.items())
        ]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    table = Table(title="installed problems")
    table.add_column("name")
    table.add_column("parameters (default)")
    table.add_column("summary")
    for name, cls in sorted(registry.items()):
        fields = cls.Params.model_fields
        shown = ", ".join(
            f"{k} (required)" if f.is_required() else f"{k}={f.default}" for k, f in fields.items()
        )
        table.add_row(name, shown, cls.summary)
    out.print(table)
