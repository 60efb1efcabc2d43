"""The ``ridgerider`` command line: ``run`` a search, list ``problems``, manage stored jobs.

Every search is a stored job (``--database-url``, default a SQLite file in the user's data
folder, or ``$RIDGERIDER_DATABASE_URL``), so ``jobs``, ``show``, ``resume`` and ``extend`` work
on what ``run`` left behind, even if its process died.

Bad input (unknown problem, unknown or malformed parameter or setting, out-of-range value)
exits with code 2 and a message naming the field; nothing is written in that case.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ridgerider.core.settings import ORDERS, RRSettings
from ridgerider.problems import ParamError, UnknownProblemError, available, create
from ridgerider.workers import runner
from ridgerider.workers.worker import NodeView

__all__ = ["main"]

console = Console(stderr=True)
out = Console()


def _usage_error(message: str) -> NoReturn:
    """Report bad input and exit with status 2 (click's usage-error convention)."""
    raise click.UsageError(message)


def _parse_pairs(pairs: tuple[str, ...], option: str) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            _usage_error(f"{option} expects KEY=VALUE, got {item!r}")
        parsed[key.strip()] = value.strip()
    return parsed


def _coerce_settings(raw: dict[str, str]) -> dict[str, Any]:
    """Convert ``--setting`` strings to the types of :class:`RRSettings` fields."""
    types = {name: type(value) for name, value in RRSettings().to_dict().items()}
    result: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in types:
            _usage_error(f"setting {key!r}: unknown (known: {', '.join(sorted(types))})")
        kind = types[key]
        try:
            if kind is bool:
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                result[key] = value.lower() in ("true", "1", "yes")
            else:
                result[key] = kind(value)
        except ValueError:
            _usage_error(f"setting {key!r}: expected {kind.__name__}, got {value!r}")
    return result


def _build_settings(problem_defaults: dict[str, Any], overrides: dict[str, Any]) -> RRSettings:
    try:
        return RRSettings(**{**problem_defaults, **overrides})
    except ValueError as exc:
        _usage_error(f"setting {exc}")


def _solutions_table(solutions: list[dict[str, Any]], limit: int = 30) -> Table:
    table = Table(title=f"{len(solutions)} solutions", show_lines=False)
    table.add_column("fingerprint")
    table.add_column("loss", justify="right")
    table.add_column("metrics")
    for sol in solutions[:limit]:
        key = ".".join(f"{i}{'+' if s > 0 else '-'}" for i, s in sol["fingerprint"]) or "(root)"
        metrics = sol["metrics"]
        shown = {k: v for k, v in metrics.items() if not isinstance(v, list) or len(v) <= 4}
        table.add_row(key, f"{sol['loss']:.6g}", json.dumps(shown))
    if len(solutions) > limit:
        table.caption = f"{len(solutions) - limit} more in --json output"
    return table


def _print_report(report: dict[str, Any]) -> None:
    mis = report["mis"]
    out.print(
        f"job {report.get('job_id')}: {report['problem']} {json.dumps(report['params'])}, "
        f"seed {report['seed']}, {report['method']}/{report['order']}"
    )
    out.print(
        f"MIS: loss {mis['loss']:.6g}, |grad| {mis['grad_norm']:.3g}, "
        f"{mis['negative_eigenvalues']} negative eigenvalues"
    )
    out.print(_solutions_table(report["solutions"]))
    steps = f", {report['steps']} steps" if "steps" in report else ""
    summary = f"{report['nodes']} nodes{steps}, {report['elapsed_s']:.3g} s"
    if report.get("status"):
        summary += f", {report['status']}"
    if report.get("stopped_by"):
        summary += f" ({report['stopped_by']})"
    cov = report.get("coverage")
    if cov:
        summary += f", targets found {cov['found']}/{cov['total']}"
    out.print(summary)


def _write_json(report: dict[str, Any], json_path: Path | None, quiet: bool) -> None:
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2))
        if not quiet:
            out.print(f"wrote {json_path}")


def _check_json_path(json_path: Path | None) -> None:
    if json_path is not None and not json_path.parent.exists():
        _usage_error(f"--json: folder {str(json_path.parent)!r} does not exist")


def _progress(quiet: bool, description: str, total: int | None) -> tuple[Progress, Any, Any]:
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps {task.fields[steps]:,}  solutions {task.fields[solutions]}"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    )
    task = progress.add_task(description, total=total, steps=0, solutions=0)
    found = done = riding = 0

    def on_node(node: NodeView, steps: int) -> None:
        nonlocal found, done
        found += int(node.is_solution)
        done = steps
        progress.update(task, advance=1, steps=done + riding, solutions=found)

    def on_riding(steps: int) -> None:  # a long ride moves the step count while it runs
        nonlocal riding
        riding = steps
        progress.update(task, steps=done + riding)

    return progress, on_node, on_riding


def _job_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a runner call, turning an unknown job or a bad value into exit code 2."""
    try:
        return fn(*args, **kwargs)
    except runner.JobNotFoundError as exc:
        _usage_error(f"JOB: {exc}")
    except ValueError as exc:
        _usage_error(str(exc))


def _run_with_progress(
    description: str,
    total: int | None,
    call: Any,
    *args: Any,
    json_path: Path | None,
    quiet: bool,
    **kwargs: Any,
) -> None:
    """Run a runner call under a progress bar, then print and/or write its report."""
    progress, on_node, on_riding = _progress(quiet, description, total)
    with progress:
        report = call(*args, on_node=on_node, on_riding=on_riding, **kwargs)
    if not quiet:
        _print_report(report)
    _write_json(report, json_path, quiet)


DATABASE_URL = click.option(
    "--database-url",
    envvar="RIDGERIDER_DATABASE_URL",
    default=None,
    help="archive database (default: a SQLite file in the user's data folder)",
)
REDIS_URL = click.option(
    "--redis-url", envvar="RIDGERIDER_REDIS_URL", default=None, help="Redis frontier (optional)"
)
JSON_PATH = click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="write a report"
)
QUIET = click.option("--quiet", is_flag=True, help="no progress bar or table")
WORKERS = click.option(
    "--workers",
    type=click.IntRange(0, 4096),
    default=0,
    show_default=True,
    help="Ray workers (a local Ray is started on demand); 0 rides in this process",
)
RAY_ADDRESS = click.option(
    "--ray-address",
    envvar="RIDGERIDER_RAY_ADDRESS",
    default=None,
    help="with --workers: join this Ray cluster (e.g. auto, host:6379) instead of a local Ray",
)


def _ray_plan(workers: int, ray_address: str | None, threads: int = 1) -> runner.RayPlan | None:
    """``--workers N`` (N >= 1) as a Ray plan; ``None`` (in-process) for 0."""
    if workers == 0:
        if ray_address:
            _usage_error("--ray-address needs --workers >= 1")
        return None
    from ridgerider.workers.ray import WorkerOptions

    return runner.RayPlan(workers, ray_address, WorkerOptions(torch_threads=threads))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ridgerider")
def main() -> None:
    """Ridge Rider: find qualitatively different solutions by following Hessian eigenvectors."""


@main.command()
@click.argument("problem")
@click.option("--set", "params", multiple=True, metavar="KEY=VALUE", help="problem parameter")
@click.option(
    "--setting", "settings", multiple=True, metavar="KEY=VALUE", help="any search setting"
)
@click.option(
    "--method",
    type=click.Choice(["exact", "approx"]),
    default=None,
    help="exact (dense Hessian) or approx (Hessian-vector products only)",
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
@click.option("--threads", type=click.IntRange(1, 256), default=1, show_default=True)
@WORKERS
@RAY_ADDRESS
@DATABASE_URL
@REDIS_URL
@JSON_PATH
@QUIET
def run(
    problem: str,
    params: tuple[str, ...],
    settings: tuple[str, ...],
    method: str | None,
    order: str | None,
    device: str | None,
    max_nodes: int | None,
    max_steps: int | None,
    wall_time: float | None,
    seed: int,
    threads: int,
    workers: int,
    ray_address: str | None,
    database_url: str | None,
    redis_url: str | None,
    json_path: Path | None,
    quiet: bool,
) -> None:
    """Run a Ridge Rider search on PROBLEM, store it as a job and print its solutions.

    ``--workers N`` rides branches on N Ray workers (same tree and solutions as ``--workers 0``,
    which rides them in this process).
    """
    raw_params = _parse_pairs(params, "--set")
    try:
        prob = create(problem, raw_params)
    except (UnknownProblemError, ParamError) as exc:
        _usage_error(str(exc))
    overrides = _coerce_settings(_parse_pairs(settings, "--setting"))
    for key, value in (
        ("method", method),
        ("order", order),
        ("device", device),
        ("max_nodes", max_nodes),
        ("max_steps", max_steps),
    ):
        if value is not None:
            overrides[key] = value
    rr = _build_settings(prob.default_settings(), overrides)
    _check_json_path(json_path)
    plan = _ray_plan(workers, ray_address, threads)
    torch.set_num_threads(threads)

    def created(job_id: int, location: str) -> None:
        console.print(f"job {job_id} stored in {location}")

    _run_with_progress(
        f"{prob.name} nodes",
        rr.max_nodes,
        runner.run,
        problem,
        prob.params_dict(),
        rr,
        json_path=json_path,
        quiet=quiet,
        seed=seed,
        wall_time_s=wall_time,
        database_url=database_url,
        redis_url=redis_url,
        on_created=created,
        ray=plan,
    )


@main.command()
@click.option(
    "--status",
    type=click.Choice(["queued", "running", "succeeded", "failed", "cancelled"]),
    default=None,
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@DATABASE_URL
def jobs(status: str | None, limit: int, as_json: bool, database_url: str | None) -> None:
    """List stored jobs, newest first."""
    rows = runner.list_jobs(database_url=database_url, status=status, limit=limit)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title=f"{len(rows)} jobs")
    for col in ("id", "problem", "status", "nodes", "solutions", "steps", "created"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["job_id"]),
            r["problem"],
            r["status"] + (f" ({r['stopped_by']})" if r.get("stopped_by") else ""),
            str(r["nodes"]),
            str(r.get("solutions", "")),
            str(r["steps"]),
            r["created_at"][:19],
        )
    out.print(table)


@main.command()
@click.argument("job", type=click.IntRange(1))
@DATABASE_URL
@JSON_PATH
@QUIET
def show(job: int, database_url: str | None, json_path: Path | None, quiet: bool) -> None:
    """Print one stored job with its solutions (the same JSON as ``run``)."""
    _check_json_path(json_path)
    report = _job_call(runner.show, job, database_url=database_url)
    if not quiet:
        _print_report(report)
    _write_json(report, json_path, quiet)


@main.command()
@click.argument("job", type=click.IntRange(1))
@WORKERS
@RAY_ADDRESS
@DATABASE_URL
@REDIS_URL
@JSON_PATH
@QUIET
def resume(
    job: int,
    workers: int,
    ray_address: str | None,
    database_url: str | None,
    redis_url: str | None,
    json_path: Path | None,
    quiet: bool,
) -> None:
    """Continue a job whose process died, exactly where it stopped."""
    _check_json_path(json_path)
    plan = _ray_plan(workers, ray_address)
    _run_with_progress(
        f"job {job} nodes",
        None,
        _job_call,
        runner.resume,
        job,
        json_path=json_path,
        quiet=quiet,
        database_url=database_url,
        redis_url=redis_url,
        ray=plan,
    )


@main.command()
@click.argument("job", type=click.IntRange(1))
@click.option("--max-nodes", type=click.IntRange(1, 10_000_000), default=None)
@click.option("--max-steps", type=click.IntRange(0, 10**9), default=None)
@WORKERS
@RAY_ADDRESS
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
    database_url: str | None,
    redis_url: str | None,
    json_path: Path | None,
    quiet: bool,
) -> None:
    """Raise a finished job's budgets and run it on to the new ones."""
    _check_json_path(json_path)
    plan = _ray_plan(workers, ray_address)
    _run_with_progress(
        f"job {job} nodes",
        None,
        _job_call,
        runner.extend,
        job,
        json_path=json_path,
        quiet=quiet,
        max_nodes=max_nodes,
        max_steps=max_steps,
        database_url=database_url,
        redis_url=redis_url,
        ray=plan,
    )


@main.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def problems(as_json: bool) -> None:
    """List the installed problems and their parameters."""
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


from ridgerider.cli import crossplay as _crossplay  # noqa: E402,F401
from ridgerider.cli import serve as _serve  # noqa: E402,F401
from ridgerider.cli import token as _token  # noqa: E402,F401
from ridgerider.cli import worker as _worker  # noqa: E402,F401
