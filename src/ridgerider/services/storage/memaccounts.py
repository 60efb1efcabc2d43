"""The users and API tokens of the in-memory storage."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from typing_extensions import override

from ridgerider.services.storage.base import hash_token
from ridgerider.services.storage.memrows import MemoryTables
from ridgerider.services.storage.models import utcnow
from ridgerider.services.storage.records import TokenRecord, UserRecord

__all__ = ["MemoryAccounts"]


class MemoryAccounts(MemoryTables):
    """The users-and-tokens part of :class:`~.memory.InMemoryStorage`."""

    @override
    def create_user(self, name: str, *, is_admin: bool = False) -> UserRecord:
        with self.lock:
            if any(u.name == name for u in self._users.values()):
                raise ValueError(f"user {name!r} exists")
            user = UserRecord(self.next_id(), name, is_admin, utcnow())
            self._users[user.id] = user
            return user

    @override
    def set_admin(self, user_id: int, is_admin: bool) -> UserRecord:
        with self.lock:
            if user_id not in self._users:
                raise ValueError(f"no user {user_id}")
            user = dataclasses.replace(self._users[user_id], is_admin=is_admin)
            self._users[user_id] = user
            return user

    @override
    def get_user(self, user_id: int) -> UserRecord | None:
        return self._users.get(user_id)

    @override
    def get_user_by_name(self, name: str) -> UserRecord | None:
        with self.lock:
            return next((u for u in self._users.values() if u.name == name), None)

    @override
    def find_token(self, secret: str) -> TokenRecord | None:
        digest = hash_token(secret)
        with self.lock:
            return next((rec for rec, h in self._tokens.values() if h == digest), None)

    @override
    def _insert_token(
        self, user_id: int, name: str, token_hash: str, prefix: str, expires_at: datetime | None
    ) -> TokenRecord:
        with self.lock:
            if user_id not in self._users:
                raise ValueError(f"no user {user_id}")
            rec = TokenRecord(self.next_id(), user_id, name, prefix, utcnow(), expires_at, None)
            self._tokens[rec.id] = (rec, token_hash)
            return rec

    @override
    def verify_token(self, secret: str) -> UserRecord | None:
        digest, now = hash_token(secret), utcnow()
        with self.lock:
            for rec, stored in self._tokens.values():
                live = rec.revoked_at is None and (rec.expires_at is None or rec.expires_at > now)
                if stored == digest and live:
                    return self._users.get(rec.user_id)
        return None

    @override
    def revoke_token(self, token_id: int) -> bool:
        with self.lock:
            found = self._tokens.get(token_id)
            if found is None or found[0].revoked_at is not None:
                return False
            rec, digest = found
            self._tokens[token_id] = (
                TokenRecord(**{**rec.__dict__, "revoked_at": utcnow()}),
                digest,
            )
            return True
