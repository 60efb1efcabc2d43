"""A warm pool's intake: ``ridgerider run --workers N`` hands it the whole request.

A command that leaves its job to a running ``ridgerider worker`` pool would otherwise import
the engine (torch and the problems: 2-4 s on a 2-core machine) only to check its request,
store the job and build the report, all of which the pool, warm, does in milliseconds. So the
pool listens on a Unix socket named in its registration (:mod:`ridgerider.workers.registry`),
and the command (:mod:`ridgerider.cli.pooled`) sends one JSON line and reads one back:

- ``{"op": "submit", "request": {...}}`` (a :class:`~ridgerider.cli.request.RunRequest`): the
  pool checks it exactly as the command would, stores the job (its MIS found by the pool's
  first worker, as for any job left to a pool) and answers ``{"job_id", "location",
  "problem", "max_nodes", "accelerator"}``. Bad input answers ``{"error": message}``: the
  command exits 2 with it and nothing was stored. A request the pool will not take (a GPU job
  on a CPU pool, a request it cannot read, a relative path to local files from a command in
  another folder) answers ``{"decline": why}`` before anything is stored, and the command runs
  the job as it would without the intake.
- ``{"op": "resume", "job_id": N}`` and ``{"op": "extend", "job_id": N, "max_nodes": M,
  "max_steps": S}`` (``ridgerider resume`` / ``extend``): the pool resumes the job or raises its
  budgets (``jobs.resume``, ``jobs.extend``) and answers as for a stored job, with its
  ``status`` (``running`` when its workers ride on) and ``stopped_by``; an unknown job or a
  lower budget answers ``{"error": message}`` and changes nothing.
- ``{"op": "result", "job_id": N}``: ``{"result": ...}``, the job's report (``jobs.job_result``).

The socket is the user's own: it lives in the user's data folder, or in a private temporary
folder where that path is too long for a socket address, with mode 0600; on Linux the pool
also refuses a peer whose user id is not its own (``SO_PEERCRED``). A request is data (a
problem name from the registry of installed problems, parameters and settings as text), never
code, and the pool checks it as the service checks a job spec.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import socket
import struct
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ridgerider.workers.registry import archive_key, pools_dir

if TYPE_CHECKING:
    from ridgerider.services.archive import Archive
    from ridgerider.services.storage.records import JobRecord

__all__ = ["MAX_MESSAGE", "Intake", "read_message", "stored_answer"]

log = logging.getLogger(__name__)

MAX_MESSAGE = 64 << 20
"""The longest message either side reads (a report lists every solution)."""
_SOCKET_PATH_MAX = 100  # sockaddr_un holds 104-108 bytes with the final NUL, by platform


def read_message(conn: socket.socket) -> Any:
    """One JSON message: everything the peer sends until it shuts its side down."""
    chunks: list[bytes] = []
    size = 0
    while chunk := conn.recv(1 << 16):
        size += len(chunk)
        if size > MAX_MESSAGE:
            raise ValueError(f"message over {MAX_MESSAGE} bytes")
        chunks.append(chunk)
    return json.loads(b"".join(chunks))


def stored_answer(job: JobRecord, location: str) -> dict[str, Any]:
    """What the intake answers for a job it stored (also rebuilt by a command that lost it)."""
    return {
        "job_id": job.id,
        "location": location,
        "problem": job.problem,
        "max_nodes": job.settings.get("max_nodes"),
        "accelerator": job.accelerator,
    }


def _an_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _same_user(conn: socket.socket) -> bool:
    """Whether the peer runs as this process's user (where the platform can tell)."""
    if not hasattr(socket, "SO_PEERCRED"):
        return True  # the socket's mode 0600 is the guard there
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", raw)
    return uid == os.getuid()


class Intake:
    """The intake of the pool of this process, serving ``database_url`` until :meth:`close`.

    Args:
        database_url: the archive the pool serves.
        redis_url: its Redis frontier, if any.
        workers: the pool's workers per accelerator (``{"cpu": 2}``); it takes jobs of those.
    """

    def __init__(self, database_url: str, redis_url: str | None, workers: dict[str, int]) -> None:
        self.database_url, self.redis_url, self.workers = database_url, redis_url, workers
        self._private: str | None = None
        self.path = str(pools_dir() / f"{archive_key(database_url)}-{os.getpid()}.sock")
        if len(os.fsencode(self.path)) > _SOCKET_PATH_MAX:
            self._private = tempfile.mkdtemp(prefix="ridgerider-")  # mode 0700, ours
            self.path = os.path.join(self._private, "intake.sock")
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        Path(self.path).unlink(missing_ok=True)  # a pool with this pid that was killed
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        os.chmod(self.path, 0o600)
        self._server.listen(16)
        self._server.settimeout(0.2)  # a blocked accept() does not see the socket closed
        self._archive: Archive | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="pool-intake", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            conn.settimeout(None)  # accepted sockets inherit the listener's timeout
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(30.0)
                if not _same_user(conn):
                    log.warning("intake: a request from another user refused")
                    return
                reply = self.answer(read_message(conn))
            except Exception as exc:  # nothing was stored: the command does it itself
                log.warning("intake: request not taken", exc_info=True)
                reply = {"decline": f"{type(exc).__name__}: {exc}"}
            try:
                conn.sendall(json.dumps(reply).encode())
            except OSError:
                log.warning("intake: the command left before its answer", exc_info=True)

    def answer(self, message: Any) -> dict[str, Any]:
        """The reply to one message (see the module docstring)."""
        op = message.get("op") if isinstance(message, dict) else None
        if op == "submit":
            return self._submit(message.get("request"))
        if op in ("resume", "extend") and _an_int(message.get("job_id")):
            return self._go_on(op, message)
        if op == "result" and isinstance(message.get("job_id"), int):
            from ridgerider.services import jobs

            with self._lock:
                return {"result": jobs.job_result(self._open().storage, message["job_id"])}
        return {"decline": f"not a request this pool takes: {op!r}"}

    def _submit(self, data: Any) -> dict[str, Any]:
        from ridgerider.cli.request import RunRequest
        from ridgerider.services import accounts, jobs

        request = RunRequest.from_json(data)  # not one: declined, the command checks it
        relative = request.relative_paths()
        if relative and request.cwd != os.getcwd():
            return {"decline": f"{', '.join(relative)}: a relative path of the command's"}
        try:
            problem, settings = request.checked()
        except click.UsageError as exc:
            return {"error": exc.message}
        submission = request.submission(problem, settings)
        accelerator = submission.accelerator
        if self.workers.get(accelerator, 0) <= 0:
            return {"decline": f"this pool has no workers for {accelerator} jobs"}
        with self._lock:
            archive = self._open()
            owner = accounts.local_user(archive.storage).id
            submission = dataclasses.replace(submission, owner_id=owner)
            defer = submission.mis_settings is None  # the pool's first worker finds the MIS
            job = jobs.submit_job(archive.storage, archive.frontier, submission, defer_mis=defer)
            location = archive.location
        log.info("intake: job %s of %s stored", job.id, problem.name)
        return stored_answer(job, location)

    def _go_on(self, op: str, message: dict[str, Any]) -> dict[str, Any]:
        """Resume a stored job, or raise its budgets, for this pool's workers to ride on."""
        from ridgerider.services import jobs

        budgets = {k: message.get(k) for k in ("max_nodes", "max_steps")} if op == "extend" else {}
        if not all(v is None or _an_int(v) for v in budgets.values()):
            return {"decline": f"budgets are integers: {budgets}"}
        with self._lock:
            archive = self._open()
            job = archive.storage.get_job(message["job_id"])
            if job is None:
                return {"error": f"JOB: {jobs.JobNotFoundError(message['job_id'])}"}
            if self.workers.get(job.accelerator, 0) <= 0:
                return {"decline": f"this pool has no workers for {job.accelerator} jobs"}
            try:
                if op == "resume":
                    job = jobs.resume(archive.storage, archive.frontier, job.id)
                else:
                    jobs.extend(archive.storage, archive.frontier, job.id, **budgets)
            except ValueError as exc:  # a lower budget: the command's exit 2, nothing changed
                return {"error": str(exc)}
            job = archive.storage.get_job(job.id)
            location = archive.location
        assert job is not None
        log.info("intake: job %s %sd (%s)", job.id, op, job.status)
        return stored_answer(job, location) | {"status": job.status, "stopped_by": job.stopped_by}

    def _open(self) -> Archive:
        if self._archive is None:
            from ridgerider.services.archive import open_archive

            self._archive = open_archive(self.database_url, self.redis_url)
        return self._archive

    def close(self) -> None:
        """Stop taking requests and remove the socket."""
        if self._closed:
            return
        self._closed = True
        self._thread.join()
        self._server.close()
        Path(self.path).unlink(missing_ok=True)
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
        with self._lock:
            if self._archive is not None:
                self._archive.close()

    def __enter__(self) -> Intake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
