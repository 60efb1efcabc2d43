"""``ridgerider migrate``: upgrade the archive's schema, then exit (a deployment's first step)."""

from __future__ import annotations

import click

from ridgerider.cli.common import DATABASE_URL, console


@click.command()
@DATABASE_URL
def migrate(database_url: str | None) -> None:
    """Upgrade the archive database to this version's schema (Alembic head) and exit.

    Safe to run again and from several places at once (one upgrades, the others wait). The
    compose file's ``migrate`` service and the Kubernetes migration Job run it before the API
    and the workers start.
    """
    from ridgerider.services.archive import mask_url, migrate_archive

    before, after = migrate_archive(database_url)
    shown = mask_url(database_url) if database_url else "the default archive"
    if before == after:
        console.print(f"{shown}: at revision {after}, nothing to do")
    else:
        console.print(f"{shown}: upgraded from {before or 'an empty database'} to {after}")
