"""Users and API tokens: create a token for a user (creating the user), revoke, authenticate.

Only a token's SHA-256 is stored; the secret is returned once, at creation.
"""

from __future__ import annotations

from ridgerider.services.storage.base import Storage
from ridgerider.services.storage.records import TokenRecord, UserRecord

__all__ = ["DEV_USER", "authenticate", "create_token", "dev_user", "revoke_token"]

DEV_USER = "dev"
"""The user every request acts as when the service runs in development mode (no auth)."""


def _user(storage: Storage, name: str) -> UserRecord:
    """The user called ``name``, created if needed (a concurrent creator may win the race)."""
    user = storage.get_user_by_name(name)
    if user is None:
        try:
            user = storage.create_user(name)
        except ValueError:
            user = storage.get_user_by_name(name)
    assert user is not None
    return user


def create_token(storage: Storage, user: str, name: str = "cli") -> tuple[TokenRecord, str]:
    """A new token for ``user`` (created if it does not exist): its record and its secret."""
    if not user or len(user) > 64:
        raise ValueError("user: a name of 1 to 64 characters")
    return storage.create_token(_user(storage, user).id, name[:64])


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
    """The development-mode user (created on first use)."""
    return _user(storage, DEV_USER)
