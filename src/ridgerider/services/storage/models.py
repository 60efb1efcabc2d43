"""Typed SQLAlchemy 2 models of the archive: users, API tokens, jobs, nodes, solutions, events.

A row of ``nodes`` is first a *branch* (waiting to be ridden: ``branch_data``) and, once
completed, the *node* it became (results, ``theta_data``). A child branch is stored without θ
(its parent's end θ: readers take the parent's ``theta_data``); a ridden row, and an unridden one
of a succeeded job, keep only the branch's header (:mod:`.compact`); a ridden root whose θ did
not move keeps its header too (its θ, the MIS, is its own ``theta_data``). The sequencer columns
``seq`` (push order), ``rank`` (position in the single-worker expansion order) and ``slot``
(position in the random order's list) make the search order durable; see
:mod:`ridgerider.services.frontier`.
Large tensors go to the ``artifacts`` table and the row keeps their SHA-256 (``*_ref``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import BYTEA, JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import TextClause

from ridgerider.schemas.enums import NodeStatus

__all__ = [
    "ApiToken",
    "Artifact",
    "Base",
    "CrossplayRun",
    "Job",
    "JobEvent",
    "Node",
    "Solution",
    "UTCDateTime",
    "User",
    "utcnow",
]

JSONType = JSON().with_variant(JSONB(), "postgresql")
BytesType = LargeBinary().with_variant(BYTEA(), "postgresql")
IdType = BigInteger().with_variant(Integer(), "sqlite")
"""64-bit keys; SQLite only auto-increments ``INTEGER PRIMARY KEY``."""

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that reads back aware UTC datetimes on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach UTC to the naive datetimes SQLite returns."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _status_is(status: NodeStatus) -> TextClause:
    """A partial index's condition on a node status (SQL text: the enum's value)."""
    return text(f"status = '{status.value}'")


def utcnow() -> datetime:
    """Timezone-aware current time (UTC)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base with a naming convention (stable constraint names for migrations)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
        datetime: UTCDateTime(),
        bytes: BytesType,
        float: Float(precision=53),
    }


class User(Base):
    """A person or service account that owns jobs."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """An API token; only its SHA-256 is stored, the secret is shown once at creation."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    """The first characters of the secret, to tell tokens apart in listings."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class Job(Base):
    """One search: what to search, how, its budgets, its status and the sequencer state."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index(
            "ix_jobs_owner_idempotency",
            "owner_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
            sqlite_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    problem: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]]
    seed: Mapped[int] = mapped_column(BigInteger)
    settings: Mapped[dict[str, Any]]
    """``RRSettings.to_dict()``; ``max_nodes`` and ``max_steps`` are the node and step budgets."""
    mis: Mapped[dict[str, Any]]
    """The MIS summary: loss, grad_norm, negative_eigenvalues, method, iterations, spectrum."""
    status: Mapped[str] = mapped_column(String(16), index=True)
    stopped_by: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    wall_time_s: Mapped[float | None]
    """Budget: seconds of active running time; ``None`` for no limit."""
    lease_s: Mapped[float]
    max_attempts: Mapped[int]
    accelerator: Mapped[str] = mapped_column(String(8), default="cpu", server_default="cpu")
    """Which workers ride its branches: ``cpu`` or ``gpu`` (``schemas.Accelerator``)."""
    active_s: Mapped[float] = mapped_column(default=0.0)
    """Running time of finished segments (a segment starts at ``segment_start``)."""
    segment_start: Mapped[float | None]
    """Database clock (epoch seconds) when the current running segment started."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Sequencer state (see frontier.sequencer): counters over the single-worker order.
    pushed: Mapped[int] = mapped_column(default=0)
    ranked: Mapped[int] = mapped_column(default=0)
    prefix: Mapped[int] = mapped_column(default=0)
    """Ranks below this are all done: the finished part of the tree (budget used: nodes)."""
    prefix_steps: Mapped[int] = mapped_column(BigInteger, default=0)
    """Ride steps of the ranks below ``prefix`` (budget used: steps)."""
    admitted: Mapped[int] = mapped_column(default=0)
    """Ranks below this may be claimed; at the end, exactly the nodes of the tree."""
    rng_state: Mapped[list[Any] | None]
    """State of the ``random`` order's generator (``random.Random.getstate()``)."""
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    """The submission's ``Idempotency-Key`` (unique per owner): a retry returns this job."""
    name: Mapped[str | None] = mapped_column(String(128))
    """A short label given at submission (``list_jobs`` finds it by substring)."""
    tags: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    """Short labels given at submission (a JSON list of strings)."""


class Node(Base):
    """A branch of a job and, once ridden, the node it became."""

    __tablename__ = "nodes"
    __table_args__ = (
        UniqueConstraint("job_id", "key"),
        UniqueConstraint("job_id", "rank"),
        Index(
            "ix_nodes_claim",
            "job_id",
            "rank",
            postgresql_where=_status_is(NodeStatus.WAITING),
            sqlite_where=_status_is(NodeStatus.WAITING),
        ),
        Index(
            "ix_nodes_lease",
            "lease_expires",
            postgresql_where=_status_is(NodeStatus.LEASED),
            sqlite_where=_status_is(NodeStatus.LEASED),
        ),
        Index(
            "ix_nodes_pushed",
            "job_id",
            "seq",
            postgresql_where=text("rank IS NULL AND seq IS NOT NULL"),
            sqlite_where=text("rank IS NULL AND seq IS NOT NULL"),
        ),
        Index(
            "ix_nodes_priority",
            "job_id",
            "branch_loss",
            "seq",
            postgresql_where=text("rank IS NULL AND seq IS NOT NULL"),
            sqlite_where=text("rank IS NULL AND seq IS NOT NULL"),
        ),
        Index(
            "ix_nodes_spec",
            "job_id",
            "spec",
            postgresql_where=text("status = 'waiting' AND spec IS NOT NULL"),
            sqlite_where=text("status = 'waiting' AND spec IS NOT NULL"),
        ),
        Index(
            "ix_nodes_ahead",
            "job_id",
            postgresql_where=text("rank IS NULL AND status IN ('leased', 'done')"),
            sqlite_where=text("rank IS NULL AND status IN ('leased', 'done')"),
        ),
        Index(
            "ix_nodes_branch_ref",
            "branch_ref",
            postgresql_where=text("branch_ref IS NOT NULL"),
            sqlite_where=text("branch_ref IS NOT NULL"),
        ),
        Index(
            "ix_nodes_theta_ref",
            "theta_ref",
            postgresql_where=text("theta_ref IS NOT NULL"),
            sqlite_where=text("theta_ref IS NOT NULL"),
        ),
        Index(
            "ix_nodes_job_slot",
            "job_id",
            "slot",
            unique=True,
            postgresql_where=text("slot IS NOT NULL"),
            sqlite_where=text("slot IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("nodes.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(2048))
    """Text form of the fingerprint (``core.fingerprint_key``); the node's identity in its job."""
    depth: Mapped[int]
    child_index: Mapped[int]
    """Position in the parent's list of children (the ridge choice is the key's last part)."""
    branch_loss: Mapped[float | None]
    branch_data: Mapped[bytes | None]
    """``Branch.to_bytes()`` (a child's without θ, a ridden or compacted one the header only),
    or ``None`` when stored as an artifact (``branch_ref``)."""
    branch_ref: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(8), default=NodeStatus.WAITING)
    """``waiting``, ``leased``, ``done`` or ``dead`` (dead-lettered after ``max_attempts``)."""
    attempts: Mapped[int] = mapped_column(default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_expires: Mapped[float | None]
    """Database clock, epoch seconds."""
    last_error: Mapped[str | None] = mapped_column(Text)
    ride_steps: Mapped[int | None]
    """Live progress of the ride in flight (leased rows): steps its holder last reported."""
    ride_loss: Mapped[float | None]
    """The loss its holder last reported."""
    seq: Mapped[int | None]
    rank: Mapped[int | None]
    spec: Mapped[bytes | None]
    """Speculation key (``frontier.speculation``): the order in which a speculative claim
    takes branches that are not admitted yet; ``None`` for the root and ``bfs`` jobs."""
    slot: Mapped[int | None]
    # Results (set on completion): the fields of records.NodeResult, where they are declared
    # for every other list of them (tests/services/test_node_fields.py checks these columns).
    eigenvalue: Mapped[float | None]
    eigenvalue_end: Mapped[float | None]
    loss_start: Mapped[float | None]
    loss: Mapped[float | None]
    steps: Mapped[int | None]
    end_reason: Mapped[str | None] = mapped_column(String(16))
    leaf_reason: Mapped[str | None] = mapped_column(String(16))
    is_leaf: Mapped[bool | None]
    is_solution: Mapped[bool | None]
    solution_key: Mapped[str | None] = mapped_column(String(256))
    n_children: Mapped[int | None]
    crossings: Mapped[int | None]
    metrics: Mapped[dict[str, Any] | None]
    trace: Mapped[dict[str, Any] | None]
    """Per-ride detail: ``losses`` (every accepted step) and ``spectrum``."""
    theta_data: Mapped[bytes | None]
    theta_ref: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class Solution(Base):
    """A solution leaf of a job (unique per job and fingerprint)."""

    __tablename__ = "solutions"
    __table_args__ = (UniqueConstraint("job_id", "key"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), unique=True)
    key: Mapped[str] = mapped_column(String(2048))
    solution_key: Mapped[str | None] = mapped_column(String(256))
    loss: Mapped[float]
    metrics: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobEvent(Base):
    """Something that happened to a job (created, started, lease expired, finished, ...)."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Artifact(Base):
    """A content-addressed blob (large parameter vectors), shared by every row that uses it.

    ``sha256`` is the SHA-256 of its bytes, or of its job's id and its bytes for a blob that
    only one job's rows may share (a child branch's: ``tables.store_blob``).
    """

    __tablename__ = "artifacts"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CrossplayRun(Base):
    """A cross-play request of the service (``POST /crossplay``) and, once done, its report."""

    __tablename__ = "crossplays"
    __table_args__ = (
        Index(
            "ix_crossplays_owner_idempotency",
            "owner_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
            sqlite_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    request: Mapped[dict[str, Any]]
    """``problem``, ``params``, ``replicates``, ``fingerprints``, ``seed`` as accepted."""
    status: Mapped[str] = mapped_column(String(16), index=True)
    done: Mapped[int] = mapped_column(Integer, default=0)
    """Replicates finished so far (progress of the current attempt)."""
    result: Mapped[dict[str, Any] | None]
    """The report (``CrossplayReport.to_dict()``) once ``succeeded``."""
    error: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
