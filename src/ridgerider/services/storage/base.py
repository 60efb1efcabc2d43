"""The storage interface: users and tokens, jobs and their lifecycle, events, node reads.

Two implementations pass the same contract tests: :class:`~.memory.InMemoryStorage` (the
reference) and :class:`~.sql.SQLStorage` (SQLite or PostgreSQL). Writes to the search tree
itself (claims, completions) belong to a frontier, which owns a storage.

Job lifecycle: ``queued → running → succeeded | failed | cancelled``; every change is a
compare-and-set (:meth:`Storage.transition` returns whether it happened). A succeeded job that a
budget stopped can be extended (back to ``running``); a failed or cancelled one resumed.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ridgerider.schemas.enums import JobStatus, NodeStatus
from ridgerider.services.storage.records import (
    TREE_COLUMNS,
    EventRecord,
    JobRecord,
    JobSpec,
    NodeRecord,
    Page,
    RideRecord,
    SolutionRecord,
    TokenRecord,
    UserRecord,
)

if TYPE_CHECKING:  # torch: loaded where tensors are decoded, never by a listing
    from torch import Tensor

    from ridgerider.core.branch import Branch

__all__ = [
    "FINAL",
    "TRANSITIONS",
    "Storage",
    "budget_event",
    "extended_budgets",
    "hash_token",
    "new_token_secret",
]

FINAL = tuple(s for s in JobStatus if s.finished)
"""The statuses a job stops in (it can still be resumed or extended)."""
TRANSITIONS: dict[str, tuple[str, ...]] = {
    JobStatus.QUEUED: (),
    JobStatus.RUNNING: (JobStatus.QUEUED, *FINAL),
    JobStatus.SUCCEEDED: (JobStatus.RUNNING,),
    JobStatus.FAILED: (JobStatus.QUEUED, JobStatus.RUNNING),
    JobStatus.CANCELLED: (JobStatus.QUEUED, JobStatus.RUNNING),
}
"""Allowed ``to: from`` status changes."""


def new_token_secret() -> str:
    """A fresh API token secret (256 bits)."""
    return "rr_" + secrets.token_urlsafe(32)


def hash_token(secret: str) -> str:
    """What is stored of a token: SHA-256 (the secret has full entropy, so no salt is needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def extended_budgets(
    settings: dict[str, Any],
    wall: float | None,
    max_nodes: int | None,
    max_steps: int | None,
    wall_time_s: float | None,
) -> tuple[dict[str, Any], float | None]:
    """New settings and wall budget after an extension; budgets may only grow."""
    new = dict(settings)
    for name, value in (("max_nodes", max_nodes), ("max_steps", max_steps)):
        if value is not None:
            if value < new[name]:
                raise _settings_error(name, f"{name} can only grow ({new[name]} → {value})")
            new[name] = value
    if wall_time_s is not None:
        if wall is not None and wall_time_s < wall:
            raise _settings_error(
                "wall_time_s", f"wall_time_s can only grow ({wall} → {wall_time_s})"
            )
        wall = wall_time_s
    return new, wall


def budget_event(
    max_nodes: int | None, max_steps: int | None, wall_time_s: float | None
) -> dict[str, Any]:
    """Event data of an extension (the budgets that changed)."""
    changes = {"max_nodes": max_nodes, "max_steps": max_steps, "wall_time_s": wall_time_s}
    return {k: v for k, v in changes.items() if v is not None}


class Storage(ABC):
    """Durable (or, for the reference, in-memory) archive of users, jobs and search trees."""

    # -- users and tokens ------------------------------------------------------------------

    @abstractmethod
    def create_user(self, name: str, *, is_admin: bool = False) -> UserRecord:
        """Create a user; ``ValueError`` when the name is taken."""

    @abstractmethod
    def set_admin(self, user_id: int, is_admin: bool) -> UserRecord:
        """Make a user an administrator (who sees every job) or not; ``ValueError`` if unknown."""

    @abstractmethod
    def get_user(self, user_id: int) -> UserRecord | None:
        """The user with this id."""

    @abstractmethod
    def get_user_by_name(self, name: str) -> UserRecord | None:
        """The user with this name."""

    @abstractmethod
    def find_token(self, secret: str) -> TokenRecord | None:
        """The token (live or not) whose secret this is."""

    @abstractmethod
    def _insert_token(
        self, user_id: int, name: str, token_hash: str, prefix: str, expires_at: datetime | None
    ) -> TokenRecord: ...

    def create_token(
        self, user_id: int, name: str, *, expires_at: datetime | None = None
    ) -> tuple[TokenRecord, str]:
        """Create an API token; returns its record and the secret (shown only this once)."""
        secret = new_token_secret()
        return self._insert_token(
            user_id, name, hash_token(secret), secret[:10], expires_at
        ), secret

    @abstractmethod
    def verify_token(self, secret: str) -> UserRecord | None:
        """The user a live (not revoked, not expired) token belongs to, else ``None``."""

    @abstractmethod
    def revoke_token(self, token_id: int) -> bool:
        """Revoke a token; ``False`` when it was unknown or already revoked."""

    # -- jobs ------------------------------------------------------------------------------

    @abstractmethod
    def create_job(self, spec: JobSpec, root: Branch) -> JobRecord:
        """Store a ``queued`` job and its root branch (the MIS) in one transaction.

        Raises :class:`DuplicateJobError` (storing nothing) when the owner already has a job
        with the spec's idempotency key.
        """

    @abstractmethod
    def get_job(self, job_id: int) -> JobRecord | None:
        """The job with this id."""

    @abstractmethod
    def set_mis(self, job_id: int, mis: dict[str, Any]) -> None:
        """Record a job's MIS summary once a worker found it (the job is running meanwhile)."""

    @abstractmethod
    def find_job(self, owner_id: int | None, idempotency_key: str) -> JobRecord | None:
        """The job this owner submitted with this idempotency key."""

    @abstractmethod
    def list_jobs(
        self,
        *,
        owner_id: int | None = None,
        status: str | None = None,
        cursor: int | None = None,
        limit: int = 100,
        name: str | None = None,
        tag: str | None = None,
        problem: str | None = None,
    ) -> Page[JobRecord]:
        """Jobs by id, newest first; ``cursor`` is the ``next_cursor`` of the previous page.

        Filters: ``name`` matches a substring of the job's name, case-insensitively; ``tag``
        one of its tags exactly; ``problem`` and ``status`` exactly.
        """

    @abstractmethod
    def count_solutions(self, job_ids: Iterable[int]) -> dict[int, int]:
        """Solutions found so far by each of these jobs (one query; unknown ids count 0)."""

    def get_job_counted(self, job_id: int) -> tuple[JobRecord, int] | None:
        """The job and its count of solutions (the SQL storage reads both in one query)."""
        job = self.get_job(job_id)
        return None if job is None else (job, self.count_solutions([job_id])[job_id])

    @abstractmethod
    def delete_job(self, job_id: int) -> bool:
        """Delete a job with its nodes, solutions, events and the blobs only it used.

        Returns ``False`` for an unknown job. The caller cancels a running job first; a worker
        still holding one of its branches then finds the row gone and its completion refused.
        """

    @abstractmethod
    def transition(
        self, job_id: int, to: str, *, error: str | None = None, stopped_by: str | None = None
    ) -> bool:
        """Compare-and-set the status along :data:`TRANSITIONS`; ``False`` if not allowed now.

        Entering ``running`` starts a running segment (wall-time budget); leaving it adds the
        segment to ``active_s``; entering a final status sets ``finished_at``.
        """

    @abstractmethod
    def extend_job(
        self,
        job_id: int,
        *,
        max_nodes: int | None = None,
        max_steps: int | None = None,
        wall_time_s: float | None = None,
    ) -> bool:
        """Raise budgets; a job a budget stopped goes back to ``running``.

        Returns whether the job has work to do now (``False`` for an exhausted or unknown job).
        Budgets can only grow: a smaller value raises ``ValueError``.
        """

    @abstractmethod
    def requeue_dead(self, job_id: int) -> int:
        """Put dead-lettered branches back to waiting with a fresh attempt count."""

    # -- events ----------------------------------------------------------------------------

    @abstractmethod
    def add_event(self, job_id: int, kind: str, data: dict[str, Any] | None = None) -> None:
        """Append an event to a job's log."""

    @abstractmethod
    def list_events(
        self, job_id: int, *, cursor: int | None = None, limit: int = 100
    ) -> Page[EventRecord]:
        """A job's events, oldest first."""

    # -- the tree --------------------------------------------------------------------------

    @abstractmethod
    def list_nodes(
        self,
        job_id: int,
        *,
        cursor: int | None = None,
        limit: int = 1000,
        tree: bool = True,
        trace: bool = True,
    ) -> Page[NodeRecord]:
        """Nodes of a job, a page at a time.

        ``tree=True``: the finished tree in single-worker expansion order (cursor: the rank);
        ``tree=False``: every row, branches included, by id (cursor: the id). ``trace=False``
        lets a storage leave each record's ``trace`` out (``None``): the per-step losses are
        most of a row, and a listing for the wire does not show them.
        """

    @abstractmethod
    def get_node(self, node_id: int) -> NodeRecord | None:
        """One node or branch."""

    @abstractmethod
    def node_theta(self, node_id: int) -> Tensor | None:
        """The parameters where a done node's ride ended."""

    @abstractmethod
    def node_branch(self, node_id: int) -> Branch | None:
        """The branch a row was created as (what a worker rides), as far as the row keeps it.

        A ridden row, and an unridden one of a finished job, keep only the header: its θ is the
        parent's end θ and its ``direction`` is ``None`` (``core.expand.restore`` recomputes an
        unridden one's).
        """

    @abstractmethod
    def solutions(self, job_id: int) -> list[SolutionRecord]:
        """The job tree's solutions, in single-worker expansion order."""

    @abstractmethod
    def count_nodes(self, job_id: int) -> dict[str, int]:
        """Rows of a job by status."""

    def branch_counts(self) -> dict[tuple[str, str], int]:
        """Branches ``waiting`` or ``leased``, by (their job's status, their status).

        The queue and the rides in flight, for metrics. This default counts job by job; the
        SQL storage counts over its partial indexes of those two statuses, in two queries.
        """
        out: dict[tuple[str, str], int] = {}
        for job in self._all_jobs():
            for status, n in self.count_nodes(job.id).items():
                if status in (NodeStatus.WAITING, NodeStatus.LEASED):
                    key = (job.status, str(status))
                    out[key] = out.get(key, 0) + n
        return out

    def _all_jobs(self) -> Iterable[JobRecord]:
        cursor: int | None = None
        while True:
            page = self.list_jobs(cursor=cursor, limit=1000)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    @abstractmethod
    def rides(self, job_id: int) -> list[RideRecord]:
        """The job's branches being ridden now (leased), with their holders' last progress.

        Workers report progress with their lease heartbeats, so it lags by at most one
        heartbeat period; the finished tree's counts (``JobRecord.nodes``/``steps``) do not
        include it.
        """

    def tree_rows(
        self, job_id: int, *, cursor: int | None = None, limit: int = 1000
    ) -> Page[tuple[Any, ...]]:
        """A page of the finished tree (by rank, like ``list_nodes``) as bare ``TREE_COLUMNS``.

        Tuples of only what drawing needs, ``metrics`` as JSON text: no record per node and
        nothing else of the row (traces and parameters stay behind). The SQL storage selects
        those columns alone; this default derives them from ``list_nodes``.
        """
        page = self.list_nodes(job_id, cursor=cursor, limit=limit, tree=True, trace=False)
        rows = [
            (*(getattr(n, c) for c in TREE_COLUMNS[:-1]), _json_or_none(n.metrics))
            for n in page.items
        ]
        return Page(rows, page.next_cursor)

    def iter_nodes(
        self, job_id: int, *, tree: bool = True, page: int = 1000, trace: bool = True
    ) -> Iterable[NodeRecord]:
        """Every node of a job, fetched a page at a time (``trace``: as in ``list_nodes``)."""
        cursor: int | None = None
        while True:
            result = self.list_nodes(job_id, cursor=cursor, limit=page, tree=tree, trace=trace)
            yield from result.items
            if result.next_cursor is None:
                return
            cursor = result.next_cursor

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections."""


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _settings_error(field: str, message: str) -> Exception:
    """``core.errors.SettingsError`` (imported here: ``ridgerider.core`` loads the engine)."""
    from ridgerider.core.errors import SettingsError

    return SettingsError(field, message)
