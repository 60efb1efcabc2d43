"""The ``ridgerider`` command group: every command, loaded only when it is used.

``ridgerider --help`` and shell completion of command names read :data:`COMMANDS` and import no
command module (those pull in torch, SQLAlchemy, ...); a command's module is imported when the
command runs or its own help is shown. ``tests/test_cli_startup.py`` checks that each entry's
short help is the first line of the command's docstring.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem

__all__ = ["COMMANDS", "BadSetting", "main"]

COMMANDS: dict[str, tuple[str, str]] = {
    "run": (
        "ridgerider.cli.jobs:run",
        "Run a Ridge Rider search on PROBLEM, store it as a job and print its solutions.",
    ),
    "jobs": ("ridgerider.cli.jobs:jobs", "List stored jobs, newest first."),
    "show": (
        "ridgerider.cli.jobs:show",
        "Print one stored job with its solutions (the same JSON as ``run``).",
    ),
    "resume": (
        "ridgerider.cli.jobs:resume",
        "Continue a job whose process died, exactly where it stopped.",
    ),
    "extend": (
        "ridgerider.cli.jobs:extend",
        "Raise a finished job's budgets and run it on to the new ones.",
    ),
    "cancel": (
        "ridgerider.cli.manage:cancel",
        "Cancel a queued or running job (its finished nodes stay readable).",
    ),
    "delete": (
        "ridgerider.cli.manage:delete",
        "Delete a job with its nodes, solutions, parameters and events (asks first).",
    ),
    "export": (
        "ridgerider.cli.manage:export",
        "Write a job's nodes or solutions as CSV, Parquet or JSON.",
    ),
    "problems": (
        "ridgerider.cli.jobs:problems",
        "List the installed problems and their parameters.",
    ),
    "crossplay": (
        "ridgerider.cli.crossplay:crossplay",
        "Run R independent RR replicates of a two-player PROBLEM and deploy the best fingerprint.",
    ),
    "serve": ("ridgerider.cli.serve:serve", "Serve the API (and run workers) until interrupted."),
    "token": ("ridgerider.cli.token:token", "Create and revoke API tokens."),
    "worker": (
        "ridgerider.cli.worker:worker",
        "Serve every running job with Ray workers until interrupted (Ctrl-C or SIGTERM).",
    ),
    "migrate": (
        "ridgerider.cli.migrate:migrate",
        "Upgrade the archive database to this version's schema (Alembic head) and exit.",
    ),
    "version": (
        "ridgerider.cli.version:version",
        "Print the versions of ridgerider, Python and (if installed) torch.",
    ),
}
"""Command name -> (``module:attribute``, short help: the first line of its docstring)."""

CONFIG_VARIABLE = "RIDGERIDER_CONFIG"
"""``ridgerider.config.CONFIG_VARIABLE`` (not imported here: ``--help`` stays light)."""

QUIET_KEY = "ridgerider.quiet"
"""``ctx.meta`` key set by the group's ``--quiet``; every command's ``--quiet`` honours it."""


class BadSetting(click.ClickException):
    """A setting that cannot be used: ``Error: <message>`` on one line, exit code 2."""

    exit_code = 2


class _Main(click.Group):
    """The command group: lazy commands; an unusable database or Redis URL is bad input (exit 2)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, _, attr = COMMANDS[cmd_name][0].partition(":")
        command = getattr(importlib.import_module(module), attr)
        if not isinstance(command, click.Command):  # pragma: no cover - a wrong table entry
            raise TypeError(f"{module}:{attr} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands section from :data:`COMMANDS`, importing none of them."""
        width = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [
            (name, click.utils.make_default_short_help(short, width))
            for name, (_, short) in COMMANDS.items()
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Command names (with their short help) from :data:`COMMANDS`, importing none."""
        items = [
            CompletionItem(name, help=short)
            for name, (_, short) in COMMANDS.items()
            if name.startswith(incomplete)
        ]
        return items + click.Command.shell_complete(self, ctx, incomplete)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except RuntimeError as exc:
            location = sys.modules.get("ridgerider.services.location")
            if location is None or not isinstance(exc, location.ArchiveUnavailableError):
                raise
            option = "--" + exc.option.replace("_", "-")
            raise BadSetting(f"{option} {exc.url}: {exc.reason}") from None


def configure_logging(verbose: int) -> None:
    """``-v``: INFO, ``-vv``: DEBUG log records on stderr (default: warnings only)."""
    if verbose <= 0:
        return
    level = logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s", force=True
    )


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ridgerider")
@click.option(
    "-v", "--verbose", count=True, help="log what happens on stderr (-v: INFO, -vv: DEBUG)"
)
@click.option("-q", "--quiet", is_flag=True, help="no progress bars or tables, in every command")
@click.option(
    "--config",
    "config",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="a TOML file of defaults (else $RIDGERIDER_CONFIG, else ~/.config/ridgerider/config.toml)",
)
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: bool, config: str | None) -> Any:
    """Ridge Rider: find qualitatively different solutions by following Hessian eigenvectors.

    Defaults come from a config file (``--config``): a ``[settings]`` table of the
    ``RIDGERIDER_*`` settings and a table per command of option defaults (``[run]``,
    ``[serve]``, ...); the environment and the command line override it.
    """
    ctx.meta[QUIET_KEY] = quiet
    configure_logging(verbose)
    if config is not None:  # the commands' Settings and the processes they start read it
        os.environ[CONFIG_VARIABLE] = str(Path(config).resolve())
    if ctx.invoked_subcommand is not None:
        from ridgerider.cli.config_file import apply_config

        apply_config(ctx, COMMANDS)
