"""Reading the job list without the engine: what ``ridgerider jobs`` prints.

Opens only the archive's storage (:func:`~ridgerider.services.location.open_storage`), so a
listing starts without torch or the frontier (``ridgerider jobs``: 0.6 s, against 2.4-2.5 s
when it opened the whole archive).
"""

from __future__ import annotations

from typing import Any

from ridgerider.services.location import open_storage
from ridgerider.services.storage.records import JobRecord

__all__ = ["job_summary", "list_jobs"]


def job_summary(job: JobRecord, solutions: int | None = None) -> dict[str, Any]:
    """One line of ``ridgerider jobs --json`` (with the job's count of solutions, if given)."""
    return {
        "job_id": job.id,
        "name": job.name,
        "tags": list(job.tags),
        "solutions": solutions,
        "problem": job.problem,
        "params": job.params,
        "seed": job.seed,
        "order": job.settings["order"],
        "status": job.status,
        "stopped_by": job.stopped_by,
        "nodes": job.nodes,
        "steps": job.steps,
        "max_nodes": job.settings["max_nodes"],
        "max_steps": job.settings["max_steps"],
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "elapsed_s": job.elapsed_s,
        "error": job.error,
    }


def list_jobs(
    *,
    database_url: str | None = None,
    status: str | None = None,
    limit: int = 100,
    name: str | None = None,
    tag: str | None = None,
    problem: str | None = None,
) -> list[dict[str, Any]]:
    """Stored jobs, newest first, as ``ridgerider jobs --json`` prints them.

    ``name`` matches any part of the name (any case); ``tag``, ``problem``, ``status`` exactly.
    """
    storage = open_storage(database_url)
    try:
        page = storage.list_jobs(status=status, limit=limit, name=name, tag=tag, problem=problem)
        counts = storage.count_solutions(j.id for j in page.items)
        return [job_summary(j, counts[j.id]) for j in page.items]
    finally:
        storage.close()
