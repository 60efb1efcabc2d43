"""``ridgerider version``: what is installed, for bug reports."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform

import click

__all__ = ["version"]


def _version_of(package: str) -> str | None:
    """The installed distribution's version, or ``None`` when it is not installed."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


@click.command()
@click.option("--torch/--no-torch", "with_torch", default=True, show_default=True,
              help="also import torch to report its build (CUDA) and devices")  # fmt: skip
def version(with_torch: bool) -> None:
    """Print the versions of ridgerider, Python and (if installed) torch.

    The package versions come from the installed metadata; ``--torch`` (the default) also
    imports torch to say whether it sees CUDA, which takes a second or two.
    """
    click.echo(f"ridgerider {_version_of('ridgerider') or 'unknown (not installed)'}")
    click.echo(f"Python {platform.python_version()} ({platform.python_implementation()})")
    if importlib.util.find_spec("torch") is None:
        click.echo("torch not installed")
        return
    line = f"torch {_version_of('torch') or 'unknown'}"
    if with_torch:
        import torch

        cuda = torch.version.cuda
        devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
        line += f", CUDA {cuda} ({devices} device(s))" if cuda else ", CPU build"
    click.echo(line)
