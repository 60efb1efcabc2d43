"""What the commands print: progress bars, the solutions table, the job summary, JSON files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ridgerider.cli.common import console, out
from ridgerider.schemas.enums import JobStatus
from ridgerider.workers import runner
from ridgerider.workers.worker import NodeView

__all__ = ["JobRef", "print_report", "progress_bar", "run_with_progress", "write_json"]


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


def print_report(report: dict[str, Any]) -> None:
    """Print a job report: the job, its MIS, the solutions table and a summary line."""
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


def write_json(report: dict[str, Any], json_path: Path | None, quiet: bool) -> None:
    """Write ``report`` to ``json_path`` (if given)."""
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2))
        if not quiet:
            out.print(f"wrote {json_path}")


def progress_bar(quiet: bool, description: str, total: int | None) -> tuple[Progress, Any, Any]:
    """A progress bar with its ``on_node`` and ``on_riding`` callbacks for the runner."""
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


@dataclass
class JobRef:
    """The job a command works on, once known (``run`` learns it when the job is stored)."""

    id: int | None = None


def run_with_progress(
    description: str,
    total: int | None,
    call: Any,
    *args: Any,
    job: JobRef,
    json_path: Path | None,
    quiet: bool,
    **kwargs: Any,
) -> None:
    """Run a runner call under a progress bar, then print and/or write its report.

    Ctrl-C marks the job interrupted and prints how to resume it (exit 130); a job that ended
    ``failed`` prints its error and exits 1.
    """
    progress, on_node, on_riding = progress_bar(quiet, description, total)
    try:
        with progress:
            report = call(*args, on_node=on_node, on_riding=on_riding, **kwargs)
    except KeyboardInterrupt:
        _interrupted(job, kwargs)
    if not quiet:
        print_report(report)
    write_json(report, json_path, quiet)
    if report.get("status") == JobStatus.FAILED:
        console.print(f"[red]job {report.get('job_id')} failed:[/red] {report.get('error')}")
        raise SystemExit(1)


def _interrupted(job: JobRef, kwargs: dict[str, Any]) -> NoReturn:
    if job.id is None:
        console.print("interrupted before the job was stored: nothing was kept")
        raise SystemExit(130)
    urls = {k: kwargs.get(k) for k in ("database_url", "redis_url")}
    runner.interrupt(job.id, **urls)
    console.print(
        f"interrupted: job {job.id} stopped; continue it with `ridgerider resume {job.id}`"
    )
    raise SystemExit(130)
