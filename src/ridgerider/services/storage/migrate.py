"""Apply the Alembic migrations shipped in this package (on every start; cheap at head).

At head nothing imports Alembic (a fifth of a second of every CLI command): the head is read
from the migration files' ``revision`` lines and the database's revision from Alembic's own
``alembic_version`` table; Alembic itself runs only when there is something to upgrade.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

from ridgerider.services.storage.session import Database

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["MIGRATIONS", "current_revision", "head_revision", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")
_PG_LOCK = 0x5252_4D49  # advisory lock id ("RRMI"): one migrator at a time
_REVISION = re.compile(r"^(down_revision|revision) = (None|\"(\w+)\")$", re.MULTILINE)


def _config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@cache
def head_revision() -> str:
    """The newest revision shipped with this version of the package (the one nothing revises).

    Read from the files in ``migrations/versions`` (one linear chain; a test holds it to
    Alembic's ``ScriptDirectory``).
    """
    revisions, revised = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for kind, _, name in _REVISION.findall(path.read_text()):
            (revisions if kind == "revision" else revised).add(name)
    heads = revisions - revised - {""}
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def current_revision(db: Database) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    with db.engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(db: Database, revision: str = "head") -> None:
    """Upgrade ``db`` to ``revision``; concurrent callers wait for one another."""
    if revision == "head" and current_revision(db) == head_revision():
        return
    from alembic import command

    cfg = _config()
    with db.writer(), db.engine.connect() as conn:
        if db.is_sqlite:
            conn = conn.execution_options(rr_immediate=True)
        else:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK})
            conn.commit()
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
        finally:
            if not db.is_sqlite:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK})
                conn.commit()
