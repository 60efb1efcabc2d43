"""Jobs say which workers ride them: ``cpu`` (the default) or ``gpu``.

A worker claims only the branches of jobs of its own kind, so a GPU job waits for a worker
holding a GPU and CPU jobs never queue behind it (``schemas.Accelerator``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("accelerator", sa.String(8), nullable=False, server_default="cpu")
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("accelerator")
