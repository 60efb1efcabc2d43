"""Initial schema: users, API tokens, jobs, nodes, solutions and job events.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BYTES = sa.LargeBinary().with_variant(postgresql.BYTEA(), "postgresql")
FLOAT = sa.Float(precision=53)
TS = sa.DateTime(timezone=True)
UNRANKED = "rank IS NULL AND seq IS NOT NULL"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "users",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("last_used_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"])
    op.create_table(
        "jobs",
        sa.Column("id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=True),
        sa.Column("problem", sa.String(length=64), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("mis", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stopped_by", sa.String(length=16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("wall_time_s", FLOAT, nullable=True),
        sa.Column("lease_s", FLOAT, nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("active_s", FLOAT, nullable=False),
        sa.Column("segment_start", FLOAT, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("pushed", sa.Integer(), nullable=False),
        sa.Column("ranked", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.Integer(), nullable=False),
        sa.Column("prefix_steps", sa.BigInteger(), nullable=False),
        sa.Column("admitted", sa.Integer(), nullable=False),
        sa.Column("rng_state", JSON, nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_jobs_owner_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_owner_id"), "jobs", ["owner_id"])
    op.create_index(op.f("ix_jobs_status"), "jobs", ["status"])
    op.create_table(
        "job_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_events_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_events")),
    )
    op.create_index(op.f("ix_job_events_job_id"), "job_events", ["job_id"])
    op.create_table(
        "nodes",
        sa.Column("id", ID, nullable=False),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("parent_id", ID, nullable=True),
        sa.Column("key", sa.String(length=2048), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("child_index", sa.Integer(), nullable=False),
        sa.Column("branch_loss", FLOAT, nullable=True),
        sa.Column("branch_data", BYTES, nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("lease_expires", FLOAT, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("slot", sa.Integer(), nullable=True),
        sa.Column("eigenvalue", FLOAT, nullable=True),
        sa.Column("eigenvalue_end", FLOAT, nullable=True),
        sa.Column("loss_start", FLOAT, nullable=True),
        sa.Column("loss", FLOAT, nullable=True),
        sa.Column("steps", sa.Integer(), nullable=True),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.Column("leaf_reason", sa.String(length=16), nullable=True),
        sa.Column("is_leaf", sa.Boolean(), nullable=True),
        sa.Column("is_solution", sa.Boolean(), nullable=True),
        sa.Column("solution_key", sa.String(length=256), nullable=True),
        sa.Column("n_children", sa.Integer(), nullable=True),
        sa.Column("crossings", sa.Integer(), nullable=True),
        sa.Column("metrics", JSON, nullable=True),
        sa.Column("trace", JSON, nullable=True),
        sa.Column("theta_data", BYTES, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_nodes_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["nodes.id"], name=op.f("fk_nodes_parent_id_nodes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nodes")),
        sa.UniqueConstraint("job_id", "key", name=op.f("uq_nodes_job_id_key")),
        sa.UniqueConstraint("job_id", "rank", name=op.f("uq_nodes_job_id_rank")),
    )
    waiting = sa.text("status = 'waiting'")
    leased = sa.text("status = 'leased'")
    unranked = sa.text(UNRANKED)
    op.create_index(
        "ix_nodes_claim",
        "nodes",
        ["job_id", "rank"],
        postgresql_where=waiting,
        sqlite_where=waiting,
    )
    op.create_index(
        "ix_nodes_lease", "nodes", ["lease_expires"], postgresql_where=leased, sqlite_where=leased
    )
    op.create_index(
        "ix_nodes_pushed",
        "nodes",
        ["job_id", "seq"],
        postgresql_where=unranked,
        sqlite_where=unranked,
    )
    op.create_index(
        "ix_nodes_priority",
        "nodes",
        ["job_id", "branch_loss", "seq"],
        postgresql_where=unranked,
        sqlite_where=unranked,
    )
    slotted = sa.text("slot IS NOT NULL")  # only the random order's list has slots
    op.create_index(
        "ix_nodes_job_slot",
        "nodes",
        ["job_id", "slot"],
        unique=True,
        postgresql_where=slotted,
        sqlite_where=slotted,
    )
    op.create_index(op.f("ix_nodes_parent_id"), "nodes", ["parent_id"])
    op.create_table(
        "solutions",
        sa.Column("id", ID, nullable=False),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("node_id", ID, nullable=False),
        sa.Column("key", sa.String(length=2048), nullable=False),
        sa.Column("solution_key", sa.String(length=256), nullable=True),
        sa.Column("loss", FLOAT, nullable=False),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_solutions_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name=op.f("fk_solutions_node_id_nodes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_solutions")),
        sa.UniqueConstraint("job_id", "key", name=op.f("uq_solutions_job_id_key")),
        sa.UniqueConstraint("node_id", name=op.f("uq_solutions_node_id")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("solutions")
    op.drop_table("nodes")
    op.drop_table("job_events")
    op.drop_table("jobs")
    op.drop_table("api_tokens")
    op.drop_table("users")
