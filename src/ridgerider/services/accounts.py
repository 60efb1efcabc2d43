"""Users and API tokens: create a token for a user (creating the user), revoke, authenticate.

Only a token's SHA-256 is stored; the secret is returned once, at creation.

One ownership model covers every job: a job belongs to the user who submitted it. Jobs the
CLI runs (``ridgerider run``) belong to the user :data:`LOCAL_USER`; jobs submitted to the
service belong to the user of the request's token. A user sees only their own jobs, except
administrators (``ridgerider token create --admin``) and the development-mode user, who see
every job (:func:`sees_all`). A token for ``local`` shows the CLI's jobs outside development
mode.
"""

from __future__ import annotations

from ridgerider.services.storage.base import Storage
from ridgerider.services.storage.records import TokenRecord, UserRecord

__all__ = [
    "DEV_USER",
    "LOCAL_USER",
    "authenticate",
    "create_token",
    "dev_user",
    "local_user",
    "may_see",
    "revoke_token",
    "sees_all",
]

DEV_USER = "dev"
"""The user every request acts as when the service runs in development mode (no auth)."""

LOCAL_USER = "local"
"""The owner of the jobs the CLI runs in its own process (``ridgerider run``)."""


def _user(storage: Storage, name: str, *, admin: bool = False) -> UserRecord:
    """The user called ``name``, created if needed (a concurrent creator may win the race).

    ``admin`` makes the user an administrator (an existing user is promoted; never demoted).
    """
    user = storage.get_user_by_name(name)
    if user is None:
        try:
            user = storage.create_user(name, is_admin=admin)
        except ValueError:
            user = storage.get_user_by_name(name)
    assert user is not None
    if admin and not user.is_admin:
        user = storage.set_admin(user.id, True)
    return user


def create_token(
    storage: Storage, user: str, name: str = "cli", *, admin: bool = False
) -> tuple[TokenRecord, str]:
    """A new token for ``user`` (created if it does not exist): its record and its secret.

    ``admin`` makes ``user`` an administrator, who sees every user's jobs.
    """
    if not user or len(user) > 64:
        raise ValueError("user: a name of 1 to 64 characters")
    return storage.create_token(_user(storage, user, admin=admin).id, name[:64])


def revoke_token(
    storage: Storage, *, secret: str | None = None, token_id: int | None = None
) -> bool:
    """Revoke a token given its secret or its id; ``False`` if unknown or already revoked."""
    if secret is not None:
        token = storage.find_token(secret)
        if token is None:
            return False
        token_id = token.id
    if token_id is None:
        raise ValueError("give the token's secret or its id")
    return storage.revoke_token(token_id)


def authenticate(storage: Storage, secret: str) -> UserRecord | None:
    """The user of a live token, else ``None``."""
    return storage.verify_token(secret)


def dev_user(storage: Storage) -> UserRecord:
    """The development-mode user (created on first use): an administrator, who sees all jobs."""
    return _user(storage, DEV_USER, admin=True)


def local_user(storage: Storage) -> UserRecord:
    """The owner of the CLI's jobs (created on first use)."""
    return _user(storage, LOCAL_USER)


def sees_all(user: UserRecord) -> bool:
    """Whether ``user`` sees every user's jobs and cross-play runs (administrators do)."""
    return user.is_admin


def may_see(user: UserRecord, owner_id: int | None) -> bool:
    """Whether ``user`` may see a job or cross-play run owned by ``owner_id``."""
    return owner_id == user.id or sees_all(user)
