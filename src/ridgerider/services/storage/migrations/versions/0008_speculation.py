"""Speculative claims: a branch's speculation key and the indexes that serve them.

``nodes.spec`` orders the branches a worker may ride ahead of their turn
(``services.frontier.speculation``); ``ix_nodes_spec`` finds the next of a job,
``ix_nodes_ahead`` counts a job's rides leased or done ahead of its ranks (the cap).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_WAITING = "status = 'waiting' AND spec IS NOT NULL"
_AHEAD = "rank IS NULL AND status IN ('leased', 'done')"


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("spec", sa.LargeBinary(), nullable=True))
    op.create_index(
        "ix_nodes_spec",
        "nodes",
        ["job_id", "spec"],
        postgresql_where=sa.text(_WAITING),
        sqlite_where=sa.text(_WAITING),
    )
    op.create_index(
        "ix_nodes_ahead",
        "nodes",
        ["job_id"],
        postgresql_where=sa.text(_AHEAD),
        sqlite_where=sa.text(_AHEAD),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_nodes_ahead", table_name="nodes")
    op.drop_index("ix_nodes_spec", table_name="nodes")
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("spec")
