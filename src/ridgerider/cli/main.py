"""The ``ridgerider`` command group, with every command added to it."""

from __future__ import annotations

import click

from ridgerider.cli.crossplay import crossplay
from ridgerider.cli.jobs import extend, jobs, problems, resume, run, show
from ridgerider.cli.migrate import migrate
from ridgerider.cli.serve import serve
from ridgerider.cli.token import token
from ridgerider.cli.worker import worker
from ridgerider.services.archive import ArchiveUnavailableError

__all__ = ["BadSetting", "main"]


class _Main(click.Group):
    """The command group; an unusable database or Redis URL is bad input (exit 2, one line)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ArchiveUnavailableError as exc:
            option = "--" + exc.option.replace("_", "-")
            raise BadSetting(f"{option} {exc.url}: {exc.reason}") from None


class BadSetting(click.ClickException):
    """A setting that cannot be used: ``Error: <message>`` on one line, exit code 2."""

    exit_code = 2


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ridgerider")
def main() -> None:
    """Ridge Rider: find qualitatively different solutions by following Hessian eigenvectors."""


for _command in (
    run,
    jobs,
    show,
    resume,
    extend,
    problems,
    crossplay,
    serve,
    token,
    worker,
    migrate,
):
    main.add_command(_command)
