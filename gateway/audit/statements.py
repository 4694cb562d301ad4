"""Inserts compiled once and run at the driver, their parameters bound ahead of time.

The audit log's hot inserts (a request's pending entry; the integrator's rows) go
through here instead of a Core ``insert``: SQLAlchemy's per-execution work (compiling
or looking up the statement, processing every parameter of every row) cost more than
SQLite's own insert, and the integrator would pay it inside the write lock. A
``DriverInsert`` compiles its statement once per dialect and converts the rows' values
with the columns' own bind processors, the conversions a Core insert applies, so the
stored values are the same (``tests/audit/test_statements.py`` compares them); the
rows can be converted before the lock is taken and only the driver's ``executemany``
runs inside it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, insert
from sqlalchemy.engine import Dialect

Params = tuple[Any, ...] | dict[str, Any]
"""One row's parameters in the driver's paramstyle: positional or named."""


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    positional: bool
    converted: tuple[tuple[int, Callable[[Any], Any]], ...]
    """(position in ``names``, bind processor) of the columns that have one."""


class DriverInsert:
    """``INSERT INTO table (columns) VALUES (...)``, ``RETURNING returning`` if named.

    On SQLite ``insert_one`` reads the rowid instead of a RETURNING clause (cheaper).
    """

    def __init__(self, table: Table, columns: Sequence[str], returning: str | None = None) -> None:
        self.table = table
        self.columns = tuple(columns)
        self.returning = returning
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            statement = insert(self.table)
            if self.returning is not None and dialect.name != "sqlite":
                statement = statement.returning(self.table.c[self.returning])
            compiled = statement.compile(dialect=dialect, column_keys=list(self.columns))
            names = tuple(compiled.positiontup or self.columns)
            processors = (
                self.table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                for name in names
            )
            found = _Compiled(
                sql=compiled.string,
                names=names,
                positional=bool(compiled.positional),
                converted=tuple((i, p) for i, p in enumerate(processors) if p is not None),
            )
            self._compiled[dialect.name] = found
        return found

    def params(self, dialect: Dialect, rows: Sequence[Mapping[str, Any]]) -> list[Params]:
        """Return ``rows`` (every one with all the columns) as the driver takes them."""
        compiled = self._for(dialect)
        names, converted = compiled.names, compiled.converted
        params: list[Params] = []
        for row in rows:
            values = [row[name] for name in names]
            for i, process in converted:
                values[i] = process(values[i])
            params.append(
                tuple(values) if compiled.positional else dict(zip(names, values, strict=True))
            )
        return params

    def run(self, conn: Connection, params: list[Params]) -> None:
        """Insert rows converted by ``params`` (with ``conn``'s dialect), in one executemany."""
        if params:
            conn.exec_driver_sql(self._for(conn.dialect).sql, params)

    def insert_one(self, conn: Connection, row: Mapping[str, Any]) -> int:
        """Insert one row; return its ``returning`` column (SQLite: the rowid, no RETURNING).

        Only for an integer primary key the database assigns.
        """
        params = self.params(conn.dialect, [row])[0]
        result = conn.exec_driver_sql(self._for(conn.dialect).sql, params)
        if conn.dialect.name == "sqlite":
            return int(result.lastrowid)
        return int(result.scalar_one())
