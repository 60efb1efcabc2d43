"""What the commands print: progress bars, the solutions table, the job summary, JSON files."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ridgerider.cli.common import console, job_call, out, ray_plan
from ridgerider.schemas.enums import JobStatus

if TYPE_CHECKING:
    from ridgerider.workers.worker import NodeView

__all__ = [
    "STOP_REASONS",
    "JobRef",
    "finish_report",
    "go_on",
    "interrupted",
    "print_report",
    "progress_bar",
    "run_with_progress",
    "say_succeeded",
    "stop_reason",
    "write_json",
]


log = logging.getLogger(__name__)

STOP_REASONS = {
    "max_nodes": "stopped at its node budget (--max-nodes; `ridgerider extend` raises it)",
    "max_steps": "stopped at its step budget (--max-steps; `ridgerider extend` raises it)",
    "wall_time": "stopped at its wall-time budget (--wall-time)",
    "exhausted": "finished: every branch was explored",
    "interrupted": "interrupted (`ridgerider resume` continues it)",
}
"""Why a search stopped (a job's ``stopped_by``), as the summary line says it."""


def stop_reason(stopped_by: str | None) -> str | None:
    """``stopped_by`` in words (an unknown reason as itself); ``None`` while none is known."""
    if not stopped_by:
        return None
    return STOP_REASONS.get(stopped_by, f"stopped: {stopped_by}")


def _more_hint(report: dict[str, Any], more: int, json_path: Path | None) -> str:
    """Where the solutions the table leaves out can be seen."""
    if json_path is not None:
        return f"{more} more in {json_path}"
    job = report.get("job_id")
    where = f"ridgerider show {job} --json FILE" if job is not None else "--json FILE"
    return f"{more} more: `{where}` writes them all"


SHOWN_SOLUTIONS = 30
"""Rows of the solutions table; the rest are in the JSON report."""


def _key(fingerprint: list[list[int]]) -> str:
    """A fingerprint as ``core.branch.fingerprint_key`` writes it (``(root)`` for the root)."""
    return ".".join(f"{i}{'+' if s > 0 else '-'}" for i, s in fingerprint) or "(root)"


def _solutions_table(solutions: list[dict[str, Any]], limit: int = SHOWN_SOLUTIONS) -> Table:
    table = Table(title=f"{len(solutions)} solutions", show_lines=False)
    table.add_column("fingerprint")
    table.add_column("loss", justify="right")
    table.add_column("metrics")
    for sol in solutions[:limit]:
        key = _key(sol["fingerprint"])
        metrics = sol["metrics"]
        shown = {k: v for k, v in metrics.items() if not isinstance(v, list) or len(v) <= 4}
        table.add_row(key, f"{sol['loss']:.6g}", json.dumps(shown))
    return table


def print_report(report: dict[str, Any], json_path: Path | None = None) -> None:
    """Print a job report: the job, its MIS, the solutions table and a summary line.

    The summary says why the search stopped; ``json_path`` (the ``--json`` file being written,
    if any) is where the table says the solutions it leaves out are.
    """
    mis = report["mis"]
    out.print(
        f"job {report.get('job_id')}: {report['problem']} {json.dumps(report['params'])}, "
        f"seed {report['seed']}, {report['method']}/{report['order']}"
    )
    if mis is None:
        out.print("MIS: not found yet (a worker finds it first)")
    else:
        out.print(
            f"MIS: loss {mis['loss']:.6g}, |grad| {mis['grad_norm']:.3g}, "
            f"{mis['negative_eigenvalues']} negative eigenvalues"
        )
    out.print(_solutions_table(report["solutions"]))
    more = len(report["solutions"]) - SHOWN_SOLUTIONS
    if more > 0:
        out.print(_more_hint(report, more, json_path), soft_wrap=True)
    chosen = report.get("chosen")
    if chosen:
        scores = ", ".join(
            f"{k.removesuffix('_accuracy')} {v:.3f}"
            for k, v in chosen["metrics"].items()
            if k.endswith("_accuracy") and isinstance(v, int | float)
        )
        key = _key(chosen["fingerprint"])
        out.print(f"chosen by {chosen['by']}: {key} ({scores})", soft_wrap=True)
    steps = f", {report['steps']} steps" if "steps" in report else ""
    summary = f"{report['nodes']} nodes{steps}, {report['elapsed_s']:.3g} s"
    if report.get("status"):
        summary += f", {report['status']}"
    reason = stop_reason(report.get("stopped_by"))
    if reason:
        summary += f": {reason}"
    cov = report.get("coverage")
    if cov:
        summary += f", targets found {cov['found']}/{cov['total']}"
    out.print(summary, soft_wrap=True)


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
    log.info("%s: starting (budget %s)", description, total or "the job's")
    try:
        with progress:
            report = call(*args, on_node=on_node, on_riding=on_riding, **kwargs)
    except KeyboardInterrupt:
        interrupted(job, kwargs)
    finish_report(report, json_path, quiet)


def finish_report(report: dict[str, Any], json_path: Path | None, quiet: bool) -> None:
    """Print and/or write a job's report; a job that ended ``failed`` exits 1 with its error."""
    log.info(
        "job %s: %s after %s nodes (%s)",
        report.get("job_id"),
        report.get("status"),
        report.get("nodes"),
        report.get("stopped_by"),
    )
    if not quiet:
        print_report(report, json_path)
    write_json(report, json_path, quiet)
    if report.get("status") == JobStatus.FAILED:
        console.print(f"[red]job {report.get('job_id')} failed:[/red] {report.get('error')}")
        raise SystemExit(1)


def interrupted(job: JobRef, kwargs: dict[str, Any]) -> NoReturn:
    """Ctrl-C: mark the job interrupted (if stored) and say how to resume it; exit 130."""
    if job.id is None:
        console.print("interrupted before the job was stored: nothing was kept")
        raise SystemExit(130)
    from ridgerider.workers import runner

    urls = {k: kwargs.get(k) for k in ("database_url", "redis_url")}
    runner.interrupt(job.id, **urls)
    console.print(
        f"interrupted: job {job.id} stopped; continue it with `ridgerider resume {job.id}`"
    )
    raise SystemExit(130)


def go_on(
    call: Any,
    job: int,
    workers: int,
    ray_address: str | None,
    use_pool: bool,
    database_url: str | None,
    redis_url: str | None,
    json_path: Path | None,
    quiet: bool,
    **extra: Any,
) -> None:
    """Run a stored job on (``runner.resume`` or ``runner.extend``) under a progress bar."""
    from ridgerider.core.threads import use_compute_threads

    plan = ray_plan(workers, ray_address, use_pool=use_pool)
    use_compute_threads()
    run_with_progress(
        f"job {job} nodes",
        None,
        job_call,
        call,
        job,
        job=JobRef(job),
        json_path=json_path,
        quiet=quiet,
        database_url=database_url,
        redis_url=redis_url,
        ray=plan,
        **extra,
    )


def say_succeeded(job: int, stopped_by: str | None) -> None:
    """``resume`` of a job that already succeeded: nothing to do, and how to go further."""
    console.print(
        f"job {job} already succeeded ({stopped_by or 'done'}): nothing to resume; "
        f"`ridgerider extend {job} --max-nodes N` raises its budget"
    )
