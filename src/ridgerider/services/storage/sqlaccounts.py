"""The users and API tokens of the SQL storage."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError
from typing_extensions import override

from ridgerider.services.storage.base import Storage, hash_token
from ridgerider.services.storage.models import utcnow
from ridgerider.services.storage.records import TokenRecord, UserRecord
from ridgerider.services.storage.session import Database
from ridgerider.services.storage.tables import TOKENS, USERS

__all__ = ["SQLAccounts"]


class SQLAccounts(Storage):
    """The users-and-tokens part of :class:`~.sql.SQLStorage` (which opens ``db``)."""

    db: Database

    @override
    def create_user(self, name: str, *, is_admin: bool = False) -> UserRecord:
        try:
            with self.db.session() as s:
                row = s.connection().execute(
                    USERS.insert()
                    .values(name=name, is_admin=is_admin, created_at=utcnow())
                    .returning(*USERS.c)
                )
                return UserRecord(**row.one()._asdict())
        except IntegrityError:
            raise ValueError(f"user {name!r} exists") from None

    @override
    def set_admin(self, user_id: int, is_admin: bool) -> UserRecord:
        with self.db.session() as s:
            row = (
                s.connection()
                .execute(
                    update(USERS)
                    .where(USERS.c.id == user_id)
                    .values(is_admin=is_admin)
                    .returning(*USERS.c)
                )
                .first()
            )
        if row is None:
            raise ValueError(f"no user {user_id}")
        return UserRecord(**row._asdict())

    @override
    def get_user(self, user_id: int) -> UserRecord | None:
        with self.db.session(write=False) as s:
            row = s.connection().execute(select(USERS).where(USERS.c.id == user_id)).first()
        return None if row is None else UserRecord(**row._asdict())

    @override
    def get_user_by_name(self, name: str) -> UserRecord | None:
        with self.db.session(write=False) as s:
            row = s.connection().execute(select(USERS).where(USERS.c.name == name)).first()
        return None if row is None else UserRecord(**row._asdict())

    @override
    def find_token(self, secret: str) -> TokenRecord | None:
        t = TOKENS.c
        cols = (t.id, t.user_id, t.name, t.prefix, t.created_at, t.expires_at, t.revoked_at)
        stmt = select(*cols).where(t.token_hash == hash_token(secret))
        with self.db.session(write=False) as s:
            row = s.connection().execute(stmt).first()
        return None if row is None else TokenRecord(**row._asdict())

    @override
    def _insert_token(
        self, user_id: int, name: str, token_hash: str, prefix: str, expires_at: datetime | None
    ) -> TokenRecord:
        t = TOKENS.c
        cols = (t.id, t.user_id, t.name, t.prefix, t.created_at, t.expires_at, t.revoked_at)
        try:
            with self.db.session() as s:
                row = s.connection().execute(
                    TOKENS.insert()
                    .values(
                        user_id=user_id,
                        name=name,
                        token_hash=token_hash,
                        prefix=prefix,
                        expires_at=expires_at,
                        created_at=utcnow(),
                    )
                    .returning(*cols)
                )
                return TokenRecord(**row.one()._asdict())
        except IntegrityError:
            raise ValueError(f"no user {user_id}") from None

    @override
    def verify_token(self, secret: str) -> UserRecord | None:
        t, now = TOKENS.c, utcnow()
        live = and_(
            t.token_hash == hash_token(secret),
            t.revoked_at.is_(None),
            (t.expires_at.is_(None)) | (t.expires_at > now),
        )
        with self.db.session(write=False) as s:
            row = (
                s.connection()
                .execute(select(USERS).join(TOKENS, t.user_id == USERS.c.id).where(live))
                .first()
            )
        return None if row is None else UserRecord(**row._asdict())

    @override
    def revoke_token(self, token_id: int) -> bool:
        t = TOKENS.c
        with self.db.session() as s:
            stmt = (
                update(TOKENS)
                .where(t.id == token_id, t.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            return s.connection().execute(stmt).rowcount == 1
