"""A job's nodes or solutions as a flat table: one place for the CSV of the CLI and the API.

Every node (or solution) is a row; each metric is a column of its own (``metric.<name>``),
the union of the metric names over the job, in sorted order. The rows are read from the
storage a page at a time, twice (the metric names first), so a large job streams in constant
memory. Values that are not scalars (a metric holding a list) are written as JSON text.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from ridgerider.services.storage.base import Storage

__all__ = [
    "METRIC_PREFIX",
    "NODE_FIELDS",
    "SOLUTION_FIELDS",
    "ExportTable",
    "Subject",
    "csv_lines",
    "export_table",
]

Subject = Literal["nodes", "solutions"]
"""What to export: every node of the finished tree, or its solutions."""
NODE_FIELDS = (
    "id",
    "parent_id",
    "key",
    "depth",
    "eigenvalue",
    "loss",
    "steps",
    "end_reason",
    "is_solution",
)
"""The columns of a node row before its metrics (``key`` is the fingerprint's text form)."""
SOLUTION_FIELDS = ("node_id", "key", "rank", "solution_key", "loss")
"""The columns of a solution row before its metrics."""
METRIC_PREFIX = "metric."
"""A metric's column is its name after this prefix (no clash with ``loss`` or ``steps``)."""


@dataclass(frozen=True)
class ExportTable:
    """Column names and a fresh iterator of rows (dicts keyed by those names) on each call."""

    columns: list[str]
    rows: Callable[[], Iterator[dict[str, Any]]]


def _records(storage: Storage, job_id: int, what: Subject) -> Iterable[Any]:
    if what == "nodes":
        return storage.iter_nodes(job_id, tree=True)
    return storage.solutions(job_id)


def export_table(storage: Storage, job_id: int, what: Subject = "nodes") -> ExportTable:
    """The table of a job's nodes (its finished tree, in expansion order) or solutions."""
    fields = NODE_FIELDS if what == "nodes" else SOLUTION_FIELDS
    names: set[str] = set()
    for record in _records(storage, job_id, what):
        names.update(record.metrics or {})
    metrics = sorted(names)

    def rows() -> Iterator[dict[str, Any]]:
        for record in _records(storage, job_id, what):
            row = {f: getattr(record, f) for f in fields}
            values = record.metrics or {}
            row.update({METRIC_PREFIX + m: values.get(m) for m in metrics})
            yield row

    return ExportTable([*fields, *(METRIC_PREFIX + m for m in metrics)], rows)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, separators=(",", ":"))
    return value


def csv_lines(table: ExportTable) -> Iterator[str]:
    """The table as CSV text, the header first, then one line per row (CRLF ends)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: Iterable[Any]) -> str:
        writer.writerow(values)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield line(table.columns)
    for row in table.rows():
        yield line(_cell(row[c]) for c in table.columns)
