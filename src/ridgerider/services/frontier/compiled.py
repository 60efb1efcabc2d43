"""Compiled statements and their results: executed on the driver's cursor, not through the ORM.

A claim or a completion runs a handful of statements thousands of times a second; compiling,
cache-keying and type-processing each execution would cost more than the database work.
:class:`Compiled` is a statement compiled once for a dialect and executed on the driver's
cursor inside the session's transaction (parameters raw, JSON already encoded); :class:`Result`
reads the rows back raw (:func:`json_value` decodes JSON columns where a driver returns text).
"""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Iterator
from functools import cache
from typing import Any

from sqlalchemy import Connection, Executable
from sqlalchemy.engine import Dialect

__all__ = ["Compiled", "Result", "json_value"]


def json_value(value: Any) -> Any:
    """A JSON column as Python data (SQLite returns the text, psycopg the decoded value)."""
    return json.loads(value) if isinstance(value, str) else value


class Compiled:
    """One statement compiled for one dialect; call it with keyword parameters."""

    def __init__(self, stmt: Executable, dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self.names = list(compiled.positiontup or []) if compiled.positional else None
        # Literals of the construct (``status='done'``) became parameters with a value.
        self.defaults = {k: b.effective_value for k, b in compiled.binds.items() if not b.required}

    def _params(self, params: dict[str, Any]) -> Any:
        merged = self.defaults | params
        return merged if self.names is None else tuple(merged[k] for k in self.names)

    def __call__(self, conn: Connection, **params: Any) -> Result:
        """Execute on the driver's cursor, inside the connection's transaction."""
        cur = _cursor(conn)
        cur.execute(self.sql, self._params(params))
        return Result(cur)

    def many(self, conn: Connection, rows: list[dict[str, Any]]) -> int:
        """Execute once per parameter set (the driver's ``executemany``); rows changed in all."""
        cur = _cursor(conn)
        cur.executemany(self.sql, [self._params(r) for r in rows])
        return int(cur.rowcount)


def _cursor(conn: Connection) -> Any:
    """A cursor of the DBAPI connection (the caller's transaction has begun)."""
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


@cache
def _row_type(names: tuple[str, ...]) -> Any:
    return namedtuple("Row", names, rename=True)


class Result:
    """The rows of one execution, as named tuples (``row.rank``), fetched lazily."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor
        self.rowcount: int = cursor.rowcount
        desc = cursor.description
        self._type = _row_type(tuple(d[0] for d in desc)) if desc else None

    def __iter__(self) -> Iterator[Any]:
        assert self._type is not None
        return (self._type(*r) for r in self.cursor.fetchall())

    def all(self) -> list[Any]:
        """Every row."""
        return list(self)

    def first(self) -> Any:
        """The first row, or ``None``."""
        row = self.cursor.fetchone()
        return None if row is None or self._type is None else self._type(*row)

    def scalars(self) -> list[Any]:
        """The first column of every row."""
        return [r[0] for r in self.cursor.fetchall()]

    def scalar(self) -> Any:
        """The first column of the first row, or ``None``."""
        row = self.cursor.fetchone()
        return None if row is None else row[0]

    def scalar_one(self) -> Any:
        """The first column of the only row."""
        rows = self.cursor.fetchall()
        if len(rows) != 1:
            raise LookupError(f"expected one row, got {len(rows)}")
        return rows[0][0]
