"""The ``ridgerider`` command line: ``run`` a search, list ``problems``.

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

from ridgerider.core.branch import Node
from ridgerider.core.search import run_search
from ridgerider.core.settings import ORDERS, RRSettings
from ridgerider.problems import ParamError, UnknownProblemError, available, create
from ridgerider.report import search_report

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


def _solutions_table(solutions: list[Node], limit: int = 30) -> Table:
    table = Table(title=f"{len(solutions)} solutions", show_lines=False)
    table.add_column("fingerprint")
    table.add_column("loss", justify="right")
    table.add_column("steps", justify="right")
    table.add_column("metrics")
    for node in solutions[:limit]:
        shown = {k: v for k, v in node.metrics.items() if not isinstance(v, list) or len(v) <= 4}
        table.add_row(node.key or "(root)", f"{node.loss:.6g}", str(node.steps), json.dumps(shown))
    if len(solutions) > limit:
        table.caption = f"{len(solutions) - limit} more in --json output"
    return table


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
@click.option("--method", type=click.Choice(["exact"]), default=None, help="ridge following")
@click.option("--order", type=click.Choice(ORDERS), default=None, help="search order")
@click.option("--max-nodes", type=click.IntRange(1, 10_000_000), default=None)
@click.option("--max-steps", type=click.IntRange(0, 10**9), default=None)
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True)
@click.option("--threads", type=click.IntRange(1, 256), default=1, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--quiet", is_flag=True, help="no progress bar or table")
def run(
    problem: str,
    params: tuple[str, ...],
    settings: tuple[str, ...],
    method: str | None,
    order: str | None,
    max_nodes: int | None,
    max_steps: int | None,
    seed: int,
    threads: int,
    json_path: Path | None,
    quiet: bool,
) -> None:
    """Run a Ridge Rider search on PROBLEM and print its solutions."""
    raw_params = _parse_pairs(params, "--set")
    try:
        prob = create(problem, raw_params)
    except UnknownProblemError as exc:
        _usage_error(str(exc))
    except ParamError as exc:
        _usage_error(str(exc))
    overrides = _coerce_settings(_parse_pairs(settings, "--setting"))
    for key, value in (
        ("method", method),
        ("order", order),
        ("max_nodes", max_nodes),
        ("max_steps", max_steps),
    ):
        if value is not None:
            overrides[key] = value
    rr = _build_settings(prob.default_settings(), overrides)
    if json_path is not None and json_path.parent and not json_path.parent.exists():
        _usage_error(f"--json: folder {str(json_path.parent)!r} does not exist")
    torch.set_num_threads(threads)

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps {task.fields[steps]}  solutions {task.fields[solutions]}"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    )
    found = 0
    with progress:
        task = progress.add_task(f"{prob.name} nodes", total=rr.max_nodes, steps=0, solutions=0)

        def on_node(node: Node, steps: int) -> None:
            nonlocal found
            found += int(node.is_solution)
            progress.update(task, advance=1, steps=steps, solutions=found)

        result = run_search(prob, rr, seed=seed, on_node=on_node)
        progress.update(task, total=len(result.nodes))
    report = search_report(
        problem=prob,
        params=prob.params_dict(),
        seed=seed,
        method=rr.method,
        order=rr.order,
        mis=result.mis,
        nodes=result.nodes,
        elapsed_s=result.elapsed_s,
        extra={"stopped_by": result.stopped_by, "steps": result.steps},
    )
    if not quiet:
        out.print(
            f"MIS: loss {result.mis.loss:.6g}, |grad| {result.mis.grad_norm:.3g}, "
            f"{result.mis.negative_eigenvalues} negative eigenvalues ({result.mis.method})"
        )
        out.print(_solutions_table(result.solutions))
        cov = report.get("coverage")
        summary = (
            f"{len(result.nodes)} nodes, {result.steps} steps, {report['elapsed_s']} s, "
            f"stopped: {result.stopped_by}"
        )
        if cov:
            summary += f", targets found {cov['found']}/{cov['total']}"
        out.print(summary)
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2))
        if not quiet:
            out.print(f"wrote {json_path}")


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
        shown = ", ".join(f"{k}={f.default}" for k, f in fields.items())
        table.add_row(name, shown, cls.summary)
    out.print(table)
