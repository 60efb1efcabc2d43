"""PostgreSQL: the frontier keeps its own tables analyzed and vacuumed, and its artifacts small.

A server without autovacuum (ours in tests and benchmarks, and some deployments) would plan
every hot statement from no statistics and keep every dead row version; one where autovacuum
lags a young, fast-growing job plans from stale ones. :class:`TableCare` runs the passes below
in a thread of its own, at most one at a time per process and one process at a time per
database (advisory locks), every few seconds from the reaper's tick and when a job ends.
"""

from __future__ import annotations

import logging
import threading

from ridgerider.services.storage.session import Database

__all__ = ["ARTIFACT_SLACK", "DEAD_FRACTION", "TableCare", "refresh_statistics", "vacuum_artifacts"]

log = logging.getLogger(__name__)

_STALE = """
SELECT t.relname,
       t.n_dead_tup > 50 + %(dead)s * greatest(t.n_live_tup, 0)
           OR coalesce(o.n_dead_tup, 0) > 50 + %(dead)s * greatest(o.n_live_tup, 0),
       t.n_mod_since_analyze > 50 + 0.1 * greatest(t.n_live_tup, 0)
FROM pg_stat_user_tables AS t JOIN pg_class AS c ON c.oid = t.relid
    LEFT JOIN pg_stat_all_tables AS o ON o.relid = c.reltoastrelid
WHERE t.schemaname = current_schema() AND t.relname IN ('nodes', 'jobs')
"""
_TABLES = ("nodes", "jobs")
"""The frontier's tables: the only names a maintenance statement is built from."""
DEAD_FRACTION = 0.05
"""Dead row versions, as a fraction of the live rows, that make a table due for ``VACUUM``.

Autovacuum waits for 20 %: a frontier writes each row four times (pushed, ranked, leased,
completed), so a job's tables would carry up to a fifth of dead versions between vacuums
(more where autovacuum is off or lags: 50 % on a 10,000-node job), and a queue's hot indexes
bloat with them. 5 % keeps both small; each ``VACUUM`` skips the pages already all-visible.
A table's TOAST counts on its own: a large problem's ridge (200 KB on digits-mlp) is a hundred
TOAST chunks that die when its branch is ridden, in a table of few rows."""


_VACUUM = "INDEX_CLEANUP OFF, TRUNCATE false"
"""What a frontier ``VACUUM`` leaves out, both measured under 64 busy workers.

The index pass needs every leaf page it cleans unpinned, and a queue's hottest pages never
are: one ``VACUUM`` waited 66 s, and the transaction it held meanwhile kept every backend
from pruning, so the search slowed to a tenth. Without it a pass takes ~0.1 s; the heap's
dead versions still free their space (recorded in the free space map, so inserts reuse it),
and B-tree bottom-up deletion keeps the indexes from growing with the churn (an archive left
by a 2,000-node job: 24 % over its live data, 16 % with the index pass). Autovacuum, where it
runs, still cleans the indexes. ``TRUNCATE`` would take the table's exclusive lock."""


def refresh_statistics(db: Database) -> list[str]:
    """Vacuum and re-analyze the frontier's tables once they need it; returns what ran.

    Every hot statement is planned from these statistics. A server without autovacuum (or
    one whose autovacuum has not caught up with a young, fast-growing job) plans from none:
    it takes a 100k-node job for a handful of rows and scans the job where it should look up
    one row. Autovacuum's own rule (50 rows plus 10 % of the table changed) decides when to
    ``ANALYZE``; dead versions past :data:`DEAD_FRACTION` decide when to ``VACUUM`` (which
    makes their space reusable: an archive left by a job is its live rows, not its history).
    One process at a time (an advisory lock); ``VACUUM`` runs outside a transaction, as it
    must. Returns the statements run (``"VACUUM (…) nodes"``, ``"ANALYZE jobs"``).

    A ``VACUUM`` can take long under load (its index pass waits for each hot page to be
    unpinned): call it from :class:`TableCare`, never from a thread that others wait for.
    """
    done: list[str] = []
    with db.read() as conn:
        lock = "SELECT pg_try_advisory_lock(hashtext('rr:analyze'))"
        if not conn.exec_driver_sql(lock).scalar():
            return []
        try:
            rows = conn.exec_driver_sql(_STALE, {"dead": DEAD_FRACTION}).all()
            for table, dead, stale in rows:
                if table not in _TABLES:
                    continue
                # ANALYZE first: it counts the dead line pointers a VACUUM without its index
                # pass leaves as dead rows; the VACUUM's own count (without them) comes last.
                due = [f"ANALYZE {table}"] if stale else []
                due += [f"VACUUM ({_VACUUM}) {table}"] if dead else []
                for sql in due:
                    conn.exec_driver_sql(sql)
                    done.append(sql)
        finally:
            conn.exec_driver_sql("SELECT pg_advisory_unlock(hashtext('rr:analyze'))")
    return done


ARTIFACT_SLACK = 1 << 20
"""Bytes of the artifact store's files beyond its live blobs that make it due for ``VACUUM``
(or an eighth of the live bytes, if more: TOAST's own overhead is ~2 % of a large store)."""

_ARTIFACT_SPACE = (
    "SELECT pg_table_size('artifacts'), (SELECT coalesce(sum(size), 0) FROM artifacts)"
)
"""The artifact store's files (heap, TOAST and their maps; not indexes) and its live bytes."""

_VACUUM_ARTIFACTS = "VACUUM (INDEX_CLEANUP ON, TRUNCATE true) artifacts"
"""With its index pass, so that the dead chunks' line pointers are freed, and with
``TRUNCATE``, so that the emptied tail goes back to the file system. Not a hot table: only
claims of large branches read it, one blob per ride of seconds."""

_LOCK = "hashtext('rr:artifacts')"


def vacuum_artifacts(db: Database, last: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """``VACUUM`` the artifact store once :data:`ARTIFACT_SLACK` of its files is dead space.

    Large branches live there (``storage.tables.BRANCH_INLINE_LIMIT``) and die together when
    ridden or when their job ends, so the table's tail empties and a ``VACUUM`` gives it back.
    ``last`` is what the previous pass of this process left (its ``(files, live)`` bytes):
    unchanged, there is nothing new to free and nothing runs. Returns what this pass left
    (``last`` if it did not run, ``None`` if another process holds the lock).
    """
    with db.read() as conn:
        files, live = conn.exec_driver_sql(_ARTIFACT_SPACE).one()
        space = int(files), int(live)
        if space == last or space[0] - space[1] < max(ARTIFACT_SLACK, space[1] // 8):
            return last
        if not conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({_LOCK})").scalar():
            return None
        try:
            conn.exec_driver_sql(_VACUUM_ARTIFACTS)
            left = conn.exec_driver_sql(_ARTIFACT_SPACE).one()
            return int(left[0]), int(left[1])
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_LOCK})")


class TableCare:
    """:func:`refresh_statistics` and :func:`vacuum_artifacts` in a thread of their own.

    The reaper asks for both every few seconds and goes on at once: a ``VACUUM`` that waits
    for pinned index pages (a minute under 64 busy workers, measured) must not hold up the
    reaping and the stuck-job checks that the reaper's tick also does. A job's end asks for
    the artifact store's pass only (its compaction freed its large branches). What is asked
    while a pass runs runs after it, in the same thread.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._due: set[str] = set()
        self._artifacts: tuple[int, int] | None = None

    def start(self, *, tables: bool = True) -> bool:
        """Ask for a pass (``tables=False``: the artifact store's only).

        Returns whether a thread started for it (``False``: the running one takes it).
        """
        with self._lock:
            self._due |= {"tables", "artifacts"} if tables else {"artifacts"}
            if self._thread is not None:
                return False
            self._thread = threading.Thread(target=self._run, name="ridgerider-vacuum", daemon=True)
            self._thread.start()
            return True

    def _run(self) -> None:
        while True:
            with self._lock:
                due, self._due = self._due, set()
                if not due:
                    self._thread = None
                    return
            try:
                if "tables" in due:
                    refresh_statistics(self.db)
                if "artifacts" in due:
                    self._artifacts = vacuum_artifacts(self.db, self._artifacts)
            except Exception:  # the next pass tries again
                log.exception("frontier table maintenance")

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for a running pass (and what was asked meanwhile)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
