"""Engines and the one session helper: ``Database.session()`` commits or rolls back.

PostgreSQL (``postgresql://``, driven by psycopg 3) is the production backend. A SQLite file is
the embedded default; it runs in WAL mode (readers never block the writer) with a busy timeout,
and every write transaction goes through a *single writer*: a lock shared by the threads of the
process and, through ``flock`` on ``<file>.writer.lock``, by every process using the file. Write
transactions start with ``BEGIN IMMEDIATE`` under that lock, so SQLite never has to upgrade a
read lock under contention and the service never sees "database is locked".
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Float, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["Database", "Pipe", "db_now", "normalize_url"]

_PG_OPTIONS = "-c plan_cache_mode=force_custom_plan"


class db_now(FunctionElement[float]):  # noqa: N801 (reads as a SQL function)
    """The database server's clock in epoch seconds (leases are measured on one clock)."""

    type = Float(precision=53)
    inherit_cache = True


@compiles(db_now, "postgresql")
def _now_pg(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"


@compiles(db_now, "sqlite")
def _now_sqlite(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)"


def normalize_url(url: str | URL) -> URL:
    """Pick the psycopg 3 driver for ``postgresql://`` URLs; accept a bare path as SQLite."""
    if isinstance(url, str) and "://" not in url:
        url = f"sqlite:///{Path(url).expanduser().resolve()}"
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() not in ("postgresql", "sqlite"):
        raise ValueError(f"unsupported database {u.get_backend_name()!r} (postgresql or sqlite)")
    if u.get_backend_name() == "sqlite" and u.database in (None, "", ":memory:"):
        raise ValueError("SQLite needs a file (several connections share it)")
    return u


class Pipe:
    """A psycopg connection in pipeline mode (see :meth:`Database.pipeline`)."""

    def __init__(self, conn: Any, pipeline: Any) -> None:
        self.conn, self._pipeline = conn, pipeline

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        """Queue a statement (binary parameters and results); its cursor."""
        return self.conn.execute(sql, params, binary=True)

    def sync(self) -> None:
        """Wait for every queued statement (inside ``BEGIN`` this does not commit)."""
        self._pipeline.sync()


class _WriterLock:
    """One writer at a time: a thread lock plus an exclusive ``flock`` across processes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        with self._thread_lock:
            if self._depth == 0:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                    os.close(self._fd)
                    self._fd = None


class Database:
    """An engine plus the session helper; the dialect decides how writes are serialised.

    Args:
        url: ``postgresql://user@host/db`` or ``sqlite:///path`` (or a bare file path).
        pool_size: connections kept per process (PostgreSQL).
    """

    def __init__(self, url: str | URL, *, pool_size: int = 5) -> None:
        self.url = normalize_url(url)
        self.dialect = self.url.get_backend_name()
        self._writer: _WriterLock | None = None
        if self.dialect == "sqlite":
            path = Path(str(self.url.database))
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = _WriterLock(path.with_name(path.name + ".writer.lock"))
            self.engine = create_engine(
                self.url, connect_args={"timeout": 60, "check_same_thread": False}
            )
            _sqlite_pragmas(self.engine)
        else:
            # No pre-ping: it would cost a round trip per transaction on the hot path.
            # psycopg prepares a statement run five times on a connection; PostgreSQL would then
            # keep one generic plan for the connection's life, chosen while the job's tables
            # were nearly empty (a scan of the whole job, kept as the job grows to 100k nodes;
            # without autovacuum nothing ever replans it). Custom plans see the parameters and
            # the table's current size: planning costs tens of microseconds, a scan milliseconds.
            # The URL's own options (a search_path, say) come after, so that a deployment (or a
            # benchmark: ``?options=-c plan_cache_mode=auto``) can override this one.
            given = self.url.query.get("options", ())
            given = [given] if isinstance(given, str) else list(given)
            options = " ".join([_PG_OPTIONS, *given])
            self.engine = create_engine(
                self.url.difference_update_query(["options"]),
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_recycle=1800,
                connect_args={"options": options},
            )

    @property
    def is_sqlite(self) -> bool:
        """Whether this is the embedded SQLite backend."""
        return self.dialect == "sqlite"

    @contextlib.contextmanager
    def session(self, *, write: bool = True, durable: bool = True) -> Iterator[Session]:
        """A session in one transaction: committed when the block exits, rolled back on error.

        ``write=False`` promises not to write: SQLite then skips the writer lock, PostgreSQL
        runs each statement on its own (autocommit, no extra round trip to commit).
        ``durable=False`` is for coordination state that the frontier can re-derive (leases,
        heartbeats, the sequencer's counters): PostgreSQL then commits without waiting for the
        WAL flush. A crash of the server can lose only the last such commits, never out of order
        (a later durable commit flushes them), and every consumer of that state recovers (an
        unknown lease is refused, a lost requeue expires again, the sequencer re-derives).
        """
        lock = self._writer.hold() if (write and self._writer) else contextlib.nullcontext()
        with lock, self.engine.connect() as conn:
            if self._writer is not None:
                conn = conn.execution_options(rr_immediate=write)
            elif not write:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            with Session(bind=conn, expire_on_commit=False, autoflush=False) as session:
                try:
                    if write and not durable and self._writer is None:
                        raw = session.connection().connection.dbapi_connection
                        raw.cursor().execute("SET LOCAL synchronous_commit TO OFF")  # type: ignore[union-attr]
                    yield session
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for one read of the API's hot paths: no ORM session, no writer lock.

        PostgreSQL runs the statement in autocommit (one round trip); SQLite reads in a
        deferred transaction ended when the connection goes back to the pool. What
        ``session(write=False)`` gives, without building and committing a ``Session``.
        """
        with self.engine.connect() as conn:
            if self._writer is None:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    @contextlib.contextmanager
    def pipeline(self) -> Iterator[Pipe]:
        """PostgreSQL only: a pooled psycopg connection in autocommit and pipeline mode.

        Statements sent on it are queued and go to the server together; reading a result (or
        :meth:`Pipe.sync`, or leaving the block) waits for everything sent before it, so a
        transaction written as ``BEGIN; …; COMMIT`` costs one round trip. The caller writes
        its own ``BEGIN`` and ``COMMIT``; a transaction left open by an error is rolled back,
        and a connection that broke is discarded from the pool.
        """
        if self.is_sqlite:
            raise RuntimeError("pipeline mode needs PostgreSQL")
        fairy = self.engine.raw_connection()
        conn: Any = fairy.driver_connection
        try:
            conn.autocommit = True
            with conn.pipeline() as pipeline:
                yield Pipe(conn, pipeline)
        finally:
            try:
                conn.rollback()  # no-op unless an error left the transaction open
                conn.autocommit = False
            except Exception:
                fairy.invalidate()
            fairy.close()

    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        """Hold the SQLite writer lock (no-op on PostgreSQL), e.g. around migrations."""
        with self._writer.hold() if self._writer else contextlib.nullcontext():
            yield

    def dispose(self) -> None:
        """Close pooled connections (call in a child process after ``fork``)."""
        self.engine.dispose(close=False)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        # A new file gives the pages a job's compaction frees back (``compact.release_pages``);
        # on an existing file it changes nothing (that would take a VACUUM).
        cur.execute("PRAGMA auto_vacuum=INCREMENTAL")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("rr_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
