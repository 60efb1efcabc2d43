"""Alembic environment: runs on the connection handed over by ``storage.migrate.upgrade``."""

from __future__ import annotations

from alembic import context

from ridgerider.services.storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - offline mode is not supported
    raise RuntimeError("run migrations through ridgerider.services.storage.migrate")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
