"""The compact tree form: a page of a job's finished tree as parallel JSON arrays.

``GET /jobs/{id}/tree/compact`` answers what the dashboard draws of each node (``TREE_COLUMNS``)
as one array per column, encoded straight from the selected rows: one ``json.dumps`` per column,
the stored ``metrics`` JSON text spliced in as it is. No record, dict or pydantic object per
node, and nothing of a row it does not show (the per-step ``trace``, parameters and branch
blobs stay behind the per-node routes). Non-finite floats become ``null`` (JSON has no NaN).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ridgerider.api.convert import finite
from ridgerider.services.storage.records import TREE_COLUMNS, JobRecord

__all__ = ["compact_body"]

_dumps = json.JSONEncoder(separators=(",", ":")).encode
"""Compact JSON; NaN and infinities come out as ``NaN``/``Infinity`` tokens, replaced below."""
_FLOATS = frozenset({"eigenvalue", "loss"})
_BOOLS = frozenset({"is_leaf", "is_solution"})


def _floats(column: Sequence[Any]) -> str:
    """A column of numbers with each NaN or infinity written as ``null``."""
    text = _dumps(list(column))
    if "N" in text or "I" in text:  # only NaN and Infinity tokens have capitals here
        text = text.replace("-Infinity", "null").replace("Infinity", "null").replace("NaN", "null")
    return text


def _metrics(column: Sequence[str | None]) -> str:
    """The stored metrics' JSON texts as one array (re-encoded only when one has a NaN)."""
    text = "[" + ",".join("null" if m is None else m for m in column) + "]"
    if "NaN" in text or "Infinity" in text:  # rare: decode and write those finitely
        parts = ("null" if m is None else _dumps(finite(json.loads(m))) for m in column)
        text = "[" + ",".join(parts) + "]"
    return text


def compact_body(job: JobRecord, rows: list[tuple[Any, ...]], next_after: int | None) -> bytes:
    """The JSON of one compact page: the job's state, the cursor and one array per column."""
    columns: list[Sequence[Any]] = (
        list(zip(*rows, strict=True)) if rows else [()] * len(TREE_COLUMNS)
    )
    head = {
        "job_id": job.id,
        "job_status": job.status,
        "complete": job.finished,
        "count": len(rows),
        "next_after": next_after,
    }
    parts = [_dumps(head)[:-1]]
    for name, column in zip(TREE_COLUMNS, columns, strict=True):
        if name == "metrics":
            text = _metrics(column)
        elif name in _FLOATS:
            text = _floats(column)
        elif name in _BOOLS:
            text = _dumps([None if v is None else bool(v) for v in column])
        else:
            text = _dumps(list(column))
        parts.append(f',"{name}":{text}')
    parts.append("}")
    return "".join(parts).encode()
