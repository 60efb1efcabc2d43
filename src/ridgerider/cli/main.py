"""The ``ridgerider`` command group, with every command added to it."""

from __future__ import annotations

import click

from ridgerider.cli.crossplay import crossplay
from ridgerider.cli.jobs import extend, jobs, problems, resume, run, show
from ridgerider.cli.serve import serve
from ridgerider.cli.token import token
from ridgerider.cli.worker import worker

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
):
    main.add_command(_command)
