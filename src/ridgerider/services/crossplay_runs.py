"""Cross-play as a service: accepted requests are stored, run in the background, resumed.

A request (``POST /api/v1/crossplay``) is validated with
:func:`~ridgerider.services.crossplay.check_request` and only then stored as a row of
``crossplays`` (status ``queued``). :class:`CrossplayExecutor` runs the rows one at a time with
:func:`~ridgerider.services.crossplay.run_crossplay` and stores the report in the same row.

Execution (a choice): one run at a time, in a process the service spawns for them (at the
first run; it serves the next ones), not the search workers. A cross-play is a single call that
needs all ``R`` replicates together (they share one MIS, their leaves are finished in one batch
and scored against each other), so splitting it into worker tasks would need a second task kind
in the frontier for no gain in robustness; the replicates run in that process one after another
(``workers=0``, the same report as the command line's). The process computes only: it sends its
progress and its report (or its error) through a pipe, and the service's thread writes the row.
Runs are queued, so a burst of requests never takes more than one core, and each user may have
at most ``max_active`` runs queued or running (:func:`create_run` refuses more with
:class:`RunLimitError`).

Durability: a row is committed before the request is answered; at startup every row still
``queued`` or ``running`` (the service stopped or crashed) is run again from the start. A run
is a deterministic function of its request, so the rerun's report is the one the first run
would have written. On shutdown the run in progress is killed at once and stays ``running``
for the next start, so a long run never holds the service's shutdown (its process ignores
SIGINT, which a terminal sends to the whole process group; a SIGTERM to the group leaves the
run for the next start as well). With several service nodes on one archive, each node resumes
the unfinished rows it finds at its start; the first report stored wins (a report is only
written over a row that is not finished), so a duplicate run costs time, not correctness.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing import get_context
from multiprocessing.connection import Connection
from typing import Any

from sqlalchemy import Connection as SQLConnection
from sqlalchemy import Table, func, select, update
from sqlalchemy.exc import IntegrityError

from ridgerider.core.threads import use_compute_threads
from ridgerider.schemas.enums import CrossplayStatus
from ridgerider.services.crossplay import CrossplayInputError, check_request, run_crossplay
from ridgerider.services.storage.models import CrossplayRun, utcnow
from ridgerider.services.storage.sql import SQLStorage
from ridgerider.services.storage.tables import USERS

__all__ = [
    "FINISHED",
    "RUNS",
    "CrossplayExecutor",
    "IdempotencyReuseError",
    "RunLimitError",
    "create_run",
    "get_run",
    "list_runs",
    "unfinished_runs",
]

RUNS: Table = CrossplayRun.__table__  # type: ignore[assignment]
FINISHED = (CrossplayStatus.SUCCEEDED, CrossplayStatus.FAILED)
REQUEST_KEYS = ("problem", "params", "replicates", "fingerprints", "seed")
POLL_S = 0.1
"""How often the executor's thread looks for a message of the run's process or a stop."""
KILL_WAIT_S = 5.0
"""The longest the executor waits for a killed run's process to be reaped."""
log = logging.getLogger(__name__)


class IdempotencyReuseError(ValueError):
    """The idempotency key was used before for a different cross-play request."""

    def __init__(self, run_id: int) -> None:
        super().__init__(
            f"this Idempotency-Key was used for cross-play {run_id} with another request"
        )
        self.run_id = run_id


class RunLimitError(Exception):
    """The owner already has ``limit`` runs queued or running (``active`` of them)."""

    def __init__(self, limit: int, active: int) -> None:
        super().__init__(
            f"{active} of your cross-play runs are queued or running, the most one user may "
            f"have (crossplay_max_runs = {limit}); submit again when one has finished"
        )
        self.limit = limit
        self.active = active


def _find_key(storage: SQLStorage, owner_id: int | None, key: str) -> dict[str, Any] | None:
    stmt = select(RUNS).where(RUNS.c.owner_id == owner_id, RUNS.c.idempotency_key == key)
    with storage.db.session(write=False) as s:
        row = s.connection().execute(stmt).first()
    return None if row is None else row._asdict()


def create_run(
    storage: SQLStorage,
    request: dict[str, Any],
    *,
    owner_id: int | None,
    idempotency_key: str | None = None,
    max_params: int | None = None,
    max_active: int | None = None,
) -> tuple[dict[str, Any], bool]:
    """Validate and store a request; returns the row and whether it is new.

    ``max_params`` bounds the game's size (the service's limit on one job's parameters),
    ``max_active`` the owner's runs queued or running, this one included.

    Raises :class:`~ridgerider.services.crossplay.CrossplayInputError` (storing nothing) for
    invalid input, :class:`IdempotencyReuseError` for a key used with another request,
    :class:`RunLimitError` when the owner has ``max_active`` unfinished runs. A key used with
    the same request returns the first row (``created`` is ``False``), even at the limit.
    """
    request = {k: request.get(k) for k in REQUEST_KEYS}
    problem = check_request(
        request["problem"],
        request["params"],
        request["replicates"],
        request["fingerprints"],
        request["seed"],
    )
    if max_params is not None and problem.n_params > max_params:
        limit = f"{problem.n_params} parameters exceed the limit {max_params}"
        raise CrossplayInputError("params", limit)
    request["problem"] = problem.name
    request["params"] = problem.params_dict()  # normalized: defaults filled in
    if idempotency_key is not None:
        first = _find_key(storage, owner_id, idempotency_key)
        if first is not None:
            return _same_request(first, request), False
    values = {
        "owner_id": owner_id,
        "request": request,
        "status": CrossplayStatus.QUEUED.value,
        "done": 0,
        "idempotency_key": idempotency_key,
        "created_at": utcnow(),
    }
    try:
        with storage.db.session() as s:
            conn = s.connection()
            if max_active is not None and owner_id is not None:
                _check_active(conn, owner_id, max_active)
            row = conn.execute(RUNS.insert().values(**values).returning(*RUNS.c))
            return row.one()._asdict(), True
    except IntegrityError:  # a concurrent retry with the same key stored it first
        assert idempotency_key is not None
        first = _find_key(storage, owner_id, idempotency_key)
        if first is None:
            raise
        return _same_request(first, request), False


def _check_active(conn: SQLConnection, owner_id: int, limit: int) -> None:
    """Refuse a run over the owner's limit (in the transaction that would store it).

    The owner's row is locked first (PostgreSQL; SQLite has one writer at a time), so two
    concurrent submissions cannot both take the last place.
    """
    conn.execute(select(USERS.c.id).where(USERS.c.id == owner_id).with_for_update())
    unfinished = RUNS.c.owner_id == owner_id, RUNS.c.status.not_in(FINISHED)
    active = conn.execute(select(func.count()).select_from(RUNS).where(*unfinished)).scalar_one()
    if active >= limit:
        raise RunLimitError(limit, active)


def _same_request(first: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    if first["request"] != request:
        raise IdempotencyReuseError(first["id"])
    return first


def get_run(storage: SQLStorage, run_id: int) -> dict[str, Any] | None:
    """The row of a cross-play run (``result`` included)."""
    with storage.db.session(write=False) as s:
        row = s.connection().execute(select(RUNS).where(RUNS.c.id == run_id)).first()
    return None if row is None else row._asdict()


def list_runs(
    storage: SQLStorage, owner_id: int | None, *, after: int | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], int | None]:
    """An owner's runs (everyone's for ``None``), newest first, without reports; next cursor."""
    cols = [c for c in RUNS.c if c.name != "result"]
    stmt = select(*cols)
    if owner_id is not None:
        stmt = stmt.where(RUNS.c.owner_id == owner_id)
    if after is not None:
        stmt = stmt.where(RUNS.c.id < after)
    stmt = stmt.order_by(RUNS.c.id.desc()).limit(limit + 1)
    with storage.db.session(write=False) as s:
        rows = [r._asdict() for r in s.connection().execute(stmt)]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["id"] if more else None)


def unfinished_runs(storage: SQLStorage) -> list[int]:
    """Ids of the runs still ``queued`` or ``running``, oldest first."""
    stmt = select(RUNS.c.id).where(RUNS.c.status.not_in(FINISHED)).order_by(RUNS.c.id)
    with storage.db.session(write=False) as s:
        return list(s.connection().execute(stmt).scalars())


def _update(storage: SQLStorage, run_id: int, **values: Any) -> bool:
    stmt = update(RUNS).where(RUNS.c.id == run_id, RUNS.c.status.not_in(FINISHED)).values(**values)
    with storage.db.session() as s:
        return s.connection().execute(stmt.returning(RUNS.c.id)).first() is not None


def _json_safe(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with NaN and infinities as ``null`` (PostgreSQL's JSONB has none)."""
    return json.loads(json.dumps(data), parse_constant=lambda _: None)  # type: ignore[no-any-return]


Outcome = tuple[str, Any]
"""What the run process sends: ``("progress", done)``, ``("report", dict)`` or
``("failed", (message, traceback or None))``."""


def _exit_with_parent(parent: int) -> None:
    """End this process when its parent is gone (a service killed with SIGKILL)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _compute(run: Callable[..., Any], request: dict[str, Any], conn: Connection) -> Outcome:
    """One run in the run process, its progress sent as it goes; the outcome."""
    try:
        report = run(
            request["problem"],
            request["params"],
            request["replicates"],
            request["fingerprints"],
            request["seed"],
            on_replicate=lambda done, _total: conn.send(("progress", done)),
        )
    except CrossplayInputError as exc:
        return "failed", (str(exc), None)
    except Exception as exc:  # reported to the service, which logs it and fails the run
        return "failed", (f"{type(exc).__name__}: {exc}", traceback.format_exc())
    return "report", report.to_dict()


def _serve_runs(run: Callable[..., Any], conn: Connection, parent: int) -> None:
    """The run process: compute each request the service sends; it writes nothing itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the service's to handle
    _exit_with_parent(parent)
    use_compute_threads()
    while True:
        try:
            request = conn.recv()
        except EOFError:  # the service closed the pipe
            return
        conn.send(_compute(run, request, conn))


class _RunProcess:
    """A spawned interpreter that runs the requests sent to it, one at a time."""

    def __init__(self, run: Callable[..., Any]) -> None:
        ctx = get_context("spawn")
        self.conn, child = ctx.Pipe()
        args = (run, child, os.getpid())
        self.proc = ctx.Process(target=_serve_runs, args=args, name="crossplay", daemon=True)
        self.proc.start()
        child.close()  # the process holds the other end: its exit ends the pipe

    def kill(self) -> None:
        """End it now (SIGKILL: a run does not stop between two statements otherwise)."""
        self.conn.close()
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(KILL_WAIT_S)


class CrossplayExecutor:
    """Runs stored cross-play requests one at a time in a process of their own.

    The process is spawned at the first run and serves the next ones; ``run`` is what it calls
    (a module-level function: it is pickled to the spawned interpreter).
    """

    def __init__(self, storage: SQLStorage, *, run: Callable[..., Any] = run_crossplay) -> None:
        self.storage = storage
        self._run = run
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crossplay")
        self._stopping = threading.Event()
        self._process: _RunProcess | None = None

    def submit(self, run_id: int) -> Future[None]:
        """Queue a stored run."""
        return self._pool.submit(self._execute, run_id)

    def resume(self) -> list[int]:
        """Queue every unfinished run (after a restart); returns their ids."""
        ids = unfinished_runs(self.storage)
        for run_id in ids:
            self.submit(run_id)
        return ids

    def stop(self) -> None:
        """Kill the run in progress and drop the queue; unfinished runs stay for the next start.

        Returns within about :data:`POLL_S` plus the time to reap the killed process, however
        long the run would still have taken.
        """
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._process is not None:
            self._process.kill()
            self._process = None

    def _execute(self, run_id: int) -> None:
        row = get_run(self.storage, run_id)
        if row is None or row["status"] in FINISHED or self._stopping.is_set():
            return
        req = row["request"]
        _update(self.storage, run_id, status=CrossplayStatus.RUNNING.value, done=0)
        outcome = self._outcome(run_id, req)
        if outcome is None:  # stopped: the row stays running for the next start
            return
        kind, value = outcome
        if kind == "report":
            _update(
                self.storage,
                run_id,
                status=CrossplayStatus.SUCCEEDED.value,
                done=req["replicates"],
                result=_json_safe(value),
                finished_at=utcnow(),
            )
            return
        error, trace = value
        if trace is not None:
            log.error("cross-play %d failed\n%s", run_id, trace)
        _update(
            self.storage,
            run_id,
            status=CrossplayStatus.FAILED.value,
            error=error,
            finished_at=utcnow(),
        )

    def _outcome(self, run_id: int, req: dict[str, Any]) -> Outcome | None:
        """Have the run process compute ``req``; its outcome, or ``None`` when stopped.

        A process stopped from outside by SIGTERM or SIGINT (as a whole process group is, on a
        service's stop) leaves the run for the next start too; one that dies otherwise (the
        kernel's OOM killer, a crash) fails the run, naming its exit code.
        """
        if self._process is None or not self._process.proc.is_alive():
            self._process = _RunProcess(self._run)
        process = self._process
        process.conn.send(req)
        # The interpreter's exit joins this thread: a main thread gone is a stop too.
        while not self._stopping.is_set() and threading.main_thread().is_alive():
            if not process.conn.poll(POLL_S):
                continue
            try:
                kind, value = process.conn.recv()
            except EOFError:  # the process ended without an outcome
                process.kill()
                self._process = None  # the next run gets a new one
                code = process.proc.exitcode
                if self._stopping.is_set() or code in (-signal.SIGTERM, -signal.SIGINT):
                    return None
                return "failed", (f"the run's process ended unexpectedly (exit code {code})", None)
            if kind != "progress":
                return kind, value
            _update(self.storage, run_id, done=value)
        if not self._stopping.is_set():
            process.kill()
            self._process = None
        return None
