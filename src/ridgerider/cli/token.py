"""``ridgerider token create|revoke``: API tokens for the service (only their hash is stored)."""

from __future__ import annotations

import click

from ridgerider.cli.common import DATABASE_URL, console, usage_error

__all__ = ["token"]


@click.group()
def token() -> None:
    """Create and revoke API tokens."""


@token.command("create")
@click.option("--user", required=True, help="the user the token acts as (created if new)")
@click.option("--name", default="cli", show_default=True, help="a label for the token")
@click.option("--admin", is_flag=True, help="make USER an administrator, who sees every job")
@DATABASE_URL
def create(user: str, name: str, admin: bool, database_url: str | None) -> None:
    """Print a new token for USER; it is shown only this once.

    A user sees only their own jobs; an administrator (``--admin``) sees every user's. The jobs
    ``ridgerider run`` stores belong to the user ``local``: a token for ``local`` shows them.
    """
    from ridgerider.services import accounts
    from ridgerider.services.archive import open_archive

    if not 1 <= len(user) <= 64:
        usage_error("--user: a name of 1 to 64 characters")
    archive = open_archive(database_url)
    try:
        record, secret = accounts.create_token(archive.storage, user, name, admin=admin)
    finally:
        archive.close()
    role = " (administrator)" if admin else ""
    console.print(f"token {record.id} for user {user!r}{role} (shown once; store it safely):")
    click.echo(secret)


@token.command("revoke")
@click.argument("secret", required=False)
@click.option("--id", "token_id", type=click.IntRange(1), default=None, help="the token's id")
@DATABASE_URL
def revoke(secret: str | None, token_id: int | None, database_url: str | None) -> None:
    """Revoke a token given its SECRET or its --id."""
    from ridgerider.services import accounts
    from ridgerider.services.archive import open_archive

    if (secret is None) == (token_id is None):
        usage_error("give either the token (SECRET) or --id")
    archive = open_archive(database_url)
    try:
        done = accounts.revoke_token(archive.storage, secret=secret, token_id=token_id)
    finally:
        archive.close()
    if not done:
        usage_error("no such live token")
    console.print("token revoked")
