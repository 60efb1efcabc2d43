"""Migrations ship with the package: an empty database and one at the first revision reach head."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from ridgerider.services.storage.migrate import MIGRATIONS, current_revision, head_revision, upgrade
from ridgerider.services.storage.models import Base
from ridgerider.services.storage.session import Database
from ridgerider.services.storage.sql import SQLStorage

from .conftest import PG


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=PG)])
def empty_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_empty_url")


def test_migrations_are_package_data() -> None:
    assert (MIGRATIONS / "env.py").is_file() and (MIGRATIONS / "script.py.mako").is_file()
    assert head_revision() == "0009"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(cfg).get_current_head()


def test_an_archive_at_head_opens_without_alembic(sqlite_url: str) -> None:
    """Alembic runs only to upgrade (its import is a fifth of a second of every command)."""
    SQLStorage(sqlite_url).close()  # migrated to head
    code = (
        "import sys; from ridgerider.services.archive import open_archive; "
        f"open_archive({sqlite_url!r}).close(); print(sorted(m for m in sys.modules "
        "if m.split('.')[0] == 'alembic'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_empty_database_upgrades_to_head_matching_the_models(empty_url: str) -> None:
    db = Database(empty_url)
    assert current_revision(db) is None
    SQLStorage(db)  # migrations are applied on start
    assert current_revision(db) == head_revision()
    with db.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []
    SQLStorage(db)  # and starting again is a no-op
    db.close()


def test_first_revision_upgrades_to_head_keeping_data(empty_url: str) -> None:
    db = Database(empty_url)
    upgrade(db, "0001")
    assert current_revision(db) == "0001"
    assert "artifacts" not in inspect(db.engine).get_table_names()
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jobs (problem, params, seed, settings, mis, status, lease_s,"
                " max_attempts, active_s, created_at, updated_at, pushed, ranked, prefix,"
                " prefix_steps, admitted)"
                " VALUES ('toy2d', '{}', 1, '{\"order\": \"bfs\"}', '{}', 'succeeded', 60, 3, 0,"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0, 0, 0, 0, 0)"
            )
        )
    store = SQLStorage(db)
    assert current_revision(db) == head_revision()
    assert "artifacts" in inspect(db.engine).get_table_names()
    (job,) = store.list_jobs().items
    assert job.problem == "toy2d" and job.status == "succeeded"
    assert job.name is None and job.tags == ()  # jobs stored before names and tags
    db.close()
