"""Stored jobs managed from the command line: cancel, delete and export them.

Each call opens the archive (``database_url``, default the CLI's SQLite file), does one thing
and closes it; an unknown job raises :class:`~ridgerider.services.jobs.JobNotFoundError`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ridgerider.services import jobs
from ridgerider.services.archive import Archive, open_archive
from ridgerider.services.export import ExportTable, Subject, csv_lines, export_table
from ridgerider.services.jobs import JobNotFoundError
from ridgerider.services.storage.records import JobRecord

__all__ = ["FORMATS", "cancel", "delete", "export", "get"]

FORMATS = ("csv", "parquet", "json")
"""What ``export`` writes."""


@contextmanager
def _archive(database_url: str | None) -> Iterator[Archive]:
    archive = open_archive(database_url)
    try:
        yield archive
    finally:
        archive.close()


def _job(archive: Archive, job_id: int) -> JobRecord:
    job = archive.storage.get_job(job_id)
    if job is None:
        raise JobNotFoundError(job_id)
    return job


def get(job_id: int, *, database_url: str | None = None) -> JobRecord:
    """The stored job."""
    with _archive(database_url) as archive:
        return _job(archive, job_id)


def cancel(job_id: int, *, database_url: str | None = None) -> tuple[bool, str]:
    """Cancel a queued or running job: whether it was, and the job's status now."""
    with _archive(database_url) as archive:
        _job(archive, job_id)
        done = jobs.cancel(archive.storage, job_id)
        return done, _job(archive, job_id).status


def delete(job_id: int, *, database_url: str | None = None) -> None:
    """Delete a job and all it stored (a queued or running one is cancelled first)."""
    with _archive(database_url) as archive:
        if not jobs.delete(archive.storage, job_id):
            raise JobNotFoundError(job_id)


def _write_parquet(table: ExportTable, path: Path | None, stream: IO[bytes]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def cell(value: Any) -> Any:
        return json.dumps(value) if isinstance(value, dict | list) else value

    rows = [{k: cell(v) for k, v in row.items()} for row in table.rows()]
    arrow = pa.Table.from_pylist(rows) if rows else pa.table({c: [] for c in table.columns})
    pq.write_table(arrow, str(path) if path is not None else stream)
    return len(rows)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinities: ``None`` stands for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@contextmanager
def _target(path: Path | None, stream: IO[bytes]) -> Iterator[IO[bytes]]:
    if path is None:
        yield stream
        return
    with path.open("wb") as f:
        yield f


def export(
    job_id: int,
    fmt: str,
    what: Subject,
    stream: IO[bytes],
    *,
    path: Path | None = None,
    database_url: str | None = None,
) -> int:
    """Write a job's nodes or solutions as ``csv``, ``parquet`` or ``json``; returns the rows.

    Writes to ``path`` when given, else to ``stream``. Parquet needs pyarrow. CSV is the table
    of ``GET /jobs/{id}/nodes.csv``; JSON a list of the same rows (``null`` for NaN).
    """
    with _archive(database_url) as archive:
        _job(archive, job_id)
        table = export_table(archive.storage, job_id, what)
        if fmt == "parquet":
            return _write_parquet(table, path, stream)
        with _target(path, stream) as target:
            if fmt == "csv":
                count = -1  # the header is not a row
                for line in csv_lines(table):
                    target.write(line.encode())
                    count += 1
                return count
            rows = [{k: _finite(v) for k, v in row.items()} for row in table.rows()]
            target.write((json.dumps(rows, indent=2) + "\n").encode())
            return len(rows)
