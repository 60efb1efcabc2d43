"""Live ride progress: a leased row keeps the steps and loss its holder last reported.

Workers write them with their lease heartbeats, so a ride of minutes shows its progress in the
API, the dashboard and the CLI while it runs instead of only when it finishes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("ride_steps", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("ride_loss", sa.Float(precision=53), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("ride_loss")
        batch.drop_column("ride_steps")
