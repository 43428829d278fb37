"""What one SQL statement returns, in the shape the Redshift Data API reports it.

Shared by the loader (which reads counts and versions back) and every executor of
statements: the Data API adapter on AWS and the local warehouse engine
(``devstack.warehouse``). It lives apart from both so that neither the Lambda package
nor this module needs duckdb or psycopg.

* ``Column.type_name`` is Redshift's own name of the type, as ``GetStatementResult``'s
  ``ColumnMetadata.typeName`` gives it: ``varchar``, ``int2``, ``int4``, ``int8``,
  ``numeric``, ``float4``, ``float8``, ``bool``, ``date``, ``timestamp``, ``timestamptz``.
* Values are Python values: ``Decimal`` for numeric (never a float), ``int``, ``str``,
  ``bool``, ``datetime.date`` / ``datetime.datetime``, ``None`` for NULL.
* ``rowcount`` is the Data API's ``ResultRows``: the rows returned by a query, the rows
  affected by INSERT/UPDATE/DELETE/MERGE, the rows loaded by COPY, 0 for DDL.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type_name: str


@dataclass(frozen=True, slots=True)
class Result:
    columns: list[Column] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    rowcount: int = 0

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts keyed by column name (handy in tests and small reports)."""
        names = self.column_names
        return [dict(zip(names, row)) for row in self.rows]

    def scalar(self) -> Any:
        """The single value of a one-row, one-column result."""
        if len(self.rows) != 1 or len(self.rows[0]) != 1:
            raise ValueError(f"expected one row of one column, got {len(self.rows)} row(s) of {self.column_names}")
        return self.rows[0][0]
