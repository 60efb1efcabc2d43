"""A node's result fields are declared once (``records.NodeResult``); every list of them agrees.

The ORM model cannot derive its columns (each has its own SQL type and length), so it is checked
here: its result columns are exactly ``NodeResult``'s fields, with the same Python types. The
record, the codec, the hot statements and the PostgreSQL batch path derive from the declaration;
these tests pin that they still do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields

from sqlalchemy import JSON

from ridgerider.core.branch import Branch
from ridgerider.services.frontier import pgpath, statements
from ridgerider.services.frontier.codec import node_values
from ridgerider.services.storage.models import Node
from ridgerider.services.storage.records import (
    NODE_RESULT_FIELDS,
    NODE_RESULT_TYPES,
    NodeRecord,
    NodeResult,
)

from .synthetic import THETA, expansion

NOT_RESULT_COLUMNS = {
    *("id", "job_id", "parent_id", "key", "depth", "child_index"),  # identity
    *("branch_loss", "branch_data", "branch_ref"),  # the branch to ride
    *("status", "attempts", "lease_owner", "lease_token", "lease_expires", "last_error"),
    *("ride_steps", "ride_loss"),  # progress of the ride in flight
    *("seq", "rank", "slot", "spec"),  # the sequencer's order, the speculation key
    *("theta_data", "theta_ref"),  # the end parameters (a blob, beside the results)
    *("created_at", "finished_at"),
}
"""Columns of ``nodes`` that are not results."""
NOT_RESULT_RECORD_FIELDS = {
    *("id", "job_id", "parent_id", "key", "depth", "status", "attempts", "rank"),
    *("last_error", "finished_at"),
}
"""Fields of ``NodeRecord`` that are not results."""


def node_result_problems(
    columns: Mapping[str, type], record_fields: Iterable[str], declared: Mapping[str, type]
) -> list[str]:
    """How a table's columns (name → Python type) and a record's fields differ from ``declared``.

    Columns and fields listed as not results are left out; ``[]`` when everything agrees.
    """
    problems = []
    results = {c: t for c, t in columns.items() if c not in NOT_RESULT_COLUMNS}
    for name in sorted(declared.keys() - results.keys()):
        problems.append(f"no column for result field {name}")
    for name in sorted(results.keys() - declared.keys()):
        problems.append(f"column {name} is neither a result field nor listed as not one")
    for name in sorted(declared.keys() & results.keys()):
        if results[name] is not declared[name]:
            problems.append(f"column {name} holds {results[name]}, the field {declared[name]}")
    record = set(record_fields) - NOT_RESULT_RECORD_FIELDS
    problems += [f"record lacks result field {f}" for f in sorted(declared.keys() - record)]
    problems += [
        f"record field {f} is not a result field" for f in sorted(record - declared.keys())
    ]
    return problems


def _table_columns() -> dict[str, type]:
    """Each column's Python type (a JSON column may hold anything: these hold dicts)."""
    columns = Node.__table__.c
    return {c.name: dict if isinstance(c.type, JSON) else c.type.python_type for c in columns}


def _record_fields() -> list[str]:
    return [f.name for f in fields(NodeRecord)]


def test_the_declaration_lists_the_result_fields_with_their_types():
    assert tuple(f.name for f in fields(NodeResult)) == NODE_RESULT_FIELDS
    assert tuple(NODE_RESULT_TYPES) == NODE_RESULT_FIELDS
    assert NODE_RESULT_TYPES["loss"] is float and NODE_RESULT_TYPES["steps"] is int
    assert NODE_RESULT_TYPES["is_leaf"] is bool and NODE_RESULT_TYPES["metrics"] is dict


def test_the_orm_model_and_the_record_hold_exactly_the_result_fields():
    assert node_result_problems(_table_columns(), _record_fields(), NODE_RESULT_TYPES) == []


def test_the_check_sees_an_altered_copy():
    """Controls: a column dropped, added or retyped, a record field missing or added."""
    columns, record = _table_columns(), _record_fields()
    dropped = {c: t for c, t in columns.items() if c != "crossings"}
    assert node_result_problems(dropped, record, NODE_RESULT_TYPES) == [
        "no column for result field crossings"
    ]
    added = {**columns, "curvature": float}
    assert node_result_problems(added, record, NODE_RESULT_TYPES) == [
        "column curvature is neither a result field nor listed as not one"
    ]
    retyped = {**columns, "steps": float}
    assert node_result_problems(retyped, record, NODE_RESULT_TYPES) == [
        f"column steps holds {float}, the field {int}"
    ]
    short = [f for f in record if f != "loss"]
    assert node_result_problems(columns, short, NODE_RESULT_TYPES) == [
        "record lacks result field loss"
    ]
    assert node_result_problems(columns, [*record, "grad"], NODE_RESULT_TYPES) == [
        "record field grad is not a result field"
    ]


def test_the_codec_and_the_statements_write_the_result_fields():
    root = Branch(THETA, None, None, (), 0, 0.0)
    values = node_values(expansion(root).node)
    assert list(values) == [*NODE_RESULT_FIELDS, "theta_data"]
    assert (*NODE_RESULT_FIELDS, "theta_data", "theta_ref") == statements.RESULT_COLS
    assert statements.JSON_COLS == ("metrics", "trace")
    assert [c for c, _ in pgpath._RESULT] == list(NODE_RESULT_FIELDS)
