"""All I/O of ridgerider: storage (SQLAlchemy, Alembic), frontiers, jobs and the local runner.

Layering: services import :mod:`ridgerider.core` and :mod:`ridgerider.problems`, never the CLI
or the API.
"""
