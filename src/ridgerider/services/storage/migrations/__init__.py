"""Alembic migrations of the archive (applied by ``storage.migrate.upgrade``)."""
