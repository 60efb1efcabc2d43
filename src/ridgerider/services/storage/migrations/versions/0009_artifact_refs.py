"""Artifact references indexed: an artifact is deleted once no row refers to it.

Child branches of large problems are stored as artifacts (``tables.BRANCH_INLINE_LIMIT``) and
dropped when ridden; whether a row still uses a blob (content-addressed θs are shared across
jobs) is a lookup in these partial indexes, not a scan of ``nodes``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    for column in ("branch_ref", "theta_ref"):
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            f"ix_nodes_{column}",
            "nodes",
            [column],
            postgresql_where=where,
            sqlite_where=where,
        )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_nodes_theta_ref", table_name="nodes")
    op.drop_index("ix_nodes_branch_ref", table_name="nodes")
