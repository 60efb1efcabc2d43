"""``ridgerider run --workers N`` handed whole to a warm pool: the command loads no engine.

The running ``ridgerider worker`` pool (its intake, :mod:`ridgerider.cli.intake`) checks the
request, stores the job and builds the report; this side reads the job's progress from the
archive's storage (:func:`~ridgerider.workers.progress.wait_for_pools`) under the same progress
bar, and prints the same report, as a job run here would. The tree is the one the pool would
ride for a job this command stored itself: the same request, the same settings, the same
frontier.

Where no pool has an intake, or it declines (a pool of an older version, a GPU job on a CPU
pool), :func:`run_on_pool` returns ``False`` before anything is stored and the command runs the
job as before. If the pools stop before the job ends, the job goes on in this process as
``ridgerider resume`` goes on with it (``cli.report.go_on``: its own workers, as ``--no-pool``);
Ctrl-C marks the job interrupted, as always.

``resume`` and ``extend --workers N`` go the same way (:func:`go_on_pool`): the pool resumes
the job or raises its budgets, and this side follows the job and prints the pool's report.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ridgerider.cli.common import console, say_pool, usage_error
from ridgerider.cli.intake import read_message, stored_answer
from ridgerider.cli.report import (
    JobRef,
    finish_report,
    go_on,
    interrupted,
    progress_bar,
    say_succeeded,
)
from ridgerider.cli.request import RunRequest

if TYPE_CHECKING:
    from ridgerider.workers.registry import PoolEntry

__all__ = ["ask", "go_on_pool", "run_on_pool"]

log = logging.getLogger(__name__)

SUBMIT_TIMEOUT_S = 120.0
"""How long the command waits for a pool to check and store its job (a large problem's
parameters, a busy archive)."""


def ask(path: str, message: dict[str, Any], timeout_s: float) -> dict[str, Any] | None:
    """One message to the intake at ``path`` and its reply; ``None`` if there is none."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout_s)
            conn.connect(path)
            conn.sendall(json.dumps(message).encode())
            conn.shutdown(socket.SHUT_WR)
            reply = read_message(conn)
    except (OSError, ValueError):
        log.info("pool intake %s did not answer", path, exc_info=True)
        return None
    return reply if isinstance(reply, dict) else None


def run_on_pool(
    request: RunRequest,
    workers: int,
    *,
    database_url: str | None,
    redis_url: str | None,
    json_path: Path | None,
    quiet: bool,
) -> bool:
    """Run ``request`` on a running pool's intake; ``False`` if none takes it (nothing stored).

    Bad input exits 2 with the pool's message (the command's own); a job that ends ``failed``
    exits 1, Ctrl-C 130, as for a job run here.
    """
    from ridgerider.services.location import default_database_url

    url = database_url or default_database_url()
    message = {"op": "submit", "request": request.to_json()}
    # No answer: the pool may have stored the job before it stopped (found by its key).
    taken, intake = _taken(url, message, lambda: _stored(url, request))
    if taken is None:
        return False
    console.print(f"job {taken['job_id']} stored in {taken['location']}")
    urls = {"database_url": database_url, "redis_url": redis_url}
    description, total = f"{taken['problem']} nodes", int(taken["max_nodes"])
    _follow(url, intake, taken, workers, description, total, urls, json_path, quiet)
    return True


def go_on_pool(
    op: str,
    job_id: int,
    workers: int,
    *,
    database_url: str | None,
    redis_url: str | None,
    json_path: Path | None,
    quiet: bool,
    **budgets: int | None,
) -> bool:
    """``resume`` or ``extend`` (``op``) on a running pool's intake; ``False`` if none takes it.

    ``budgets``: ``extend``'s new ``max_nodes`` and ``max_steps``. Where no pool takes it,
    nothing changed and the command goes on as before. The pool resumes the job or raises its
    budgets as the command would (``jobs.resume``, ``jobs.extend``: an unknown job or a lower
    budget exits 2 with the command's message) and its workers ride on; this side shows the
    progress and prints the same report.
    """
    from ridgerider.services.location import default_database_url

    url = database_url or default_database_url()
    taken, intake = _taken(url, {"op": op, "job_id": job_id, **budgets}, lambda: None)
    if taken is None:
        return False
    if op == "resume" and taken["status"] == "succeeded":
        say_succeeded(job_id, taken["stopped_by"])
    urls = {"database_url": database_url, "redis_url": redis_url}
    running = taken["status"] == "running"
    _follow(url, intake, taken, workers if running else 0, f"job {job_id} nodes", None, urls,
            json_path, quiet)  # fmt: skip
    return True


def _taken(
    url: str, message: dict[str, Any], lost: Callable[[], dict[str, Any] | None]
) -> tuple[dict[str, Any] | None, str]:
    """The first running pool's answer to ``message`` that is not a decline, and its intake.

    ``(None, "")`` where no pool takes it. ``lost()`` stands for a pool that did not answer
    (what it may have done before it stopped). An answer ``{"error": ...}`` exits 2 with it.
    """
    from ridgerider.workers.registry import find_pools

    for entry in find_pools(url, None):
        if not entry.intake:
            continue
        taken = ask(entry.intake, message, SUBMIT_TIMEOUT_S)
        if taken is None:
            taken = lost()
        if taken is not None and "decline" not in taken:
            if "error" in taken:
                usage_error(str(taken["error"]))
            return taken, entry.intake
        log.info("pool %s did not take %s: %s", entry.pid, message["op"],
                 (taken or {}).get("decline"))  # fmt: skip
    return None, ""


def _follow(
    url: str,
    intake: str,
    taken: dict[str, Any],
    workers: int,
    description: str,
    total: int | None,
    urls: dict[str, str | None],
    json_path: Path | None,
    quiet: bool,
) -> None:
    """Show the progress of the job the intake took, then print its report.

    ``workers`` is 0 for a job that does not run (its report at once); if the pools stop
    before the job ends, it is ridden on here (``resume``'s path).
    """
    from ridgerider.workers.registry import find_pools

    job = JobRef(int(taken["job_id"]))
    if workers > 0:
        pools = find_pools(url, str(taken["accelerator"]))
        if pools:  # none: it stopped after it stored the job (``_wait`` says so)
            say_pool(pools, sum(p.workers(str(taken["accelerator"])) for p in pools), workers)
        if not _wait(url, job, pools, description, total, quiet, urls):
            console.print(f"the worker pools stopped: job {job.id} goes on here")
            from ridgerider.workers import runner

            args = (urls["database_url"], urls["redis_url"], json_path, quiet)
            go_on(runner.resume, job.id, workers, None, True, *args)
            return
    answer = ask(intake, {"op": "result", "job_id": job.id}, SUBMIT_TIMEOUT_S)
    if answer is None or not isinstance(answer.get("result"), dict):
        from ridgerider.workers import runner  # the pool stopped as the job ended

        report = runner.show(job.id, database_url=urls["database_url"])
    else:
        report = answer["result"]
    finish_report(report, json_path, quiet)


def _stored(url: str, request: RunRequest) -> dict[str, Any] | None:
    """What the intake answers for ``request``'s job if it was stored (by its key), else None."""
    from ridgerider.services import accounts
    from ridgerider.services.location import location_of, open_storage

    if request.idempotency_key is None:
        return None
    storage = open_storage(url, pool_size=1)
    try:
        owner = accounts.local_user(storage).id
        job = storage.find_job(owner, request.idempotency_key)
        return None if job is None else stored_answer(job, location_of(storage))
    finally:
        storage.close()


def _wait(
    url: str,
    job: JobRef,
    pools: list[PoolEntry],
    description: str,
    total: int,
    quiet: bool,
    urls: dict[str, str | None],
) -> bool:
    """Show the job's progress until it ends (``True``) or its pools stop (``False``)."""
    from ridgerider.services.location import open_storage
    from ridgerider.workers.progress import Report, wait_for_pools

    assert job.id is not None
    progress, on_node, on_riding = progress_bar(quiet, description, total)
    storage = open_storage(url, pool_size=1)
    try:
        with progress:
            return wait_for_pools(storage, job.id, Report(on_node, on_riding), pools, url)
    except KeyboardInterrupt:
        interrupted(job, urls)
    finally:
        storage.close()
