"""The DuckDB backend of the local warehouse: one embedded database file, one connection,
one cursor (DuckDB's own connection to the same database, with its own transaction and
temporary tables) per session."""
from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

import duckdb

from warehouse.results import Column, Result

NAME = "duckdb"
PARAM = "?"

_TYPE_NAMES = {
    "VARCHAR": "varchar", "BOOLEAN": "bool",
    "TINYINT": "int2", "SMALLINT": "int2", "INTEGER": "int4", "BIGINT": "int8",
    # SUM over integers: BIGINT in Redshift, HUGEINT in DuckDB
    "HUGEINT": "int8",
    "UTINYINT": "int2", "USMALLINT": "int4", "UINTEGER": "int8", "UBIGINT": "numeric", "UHUGEINT": "numeric",
    "FLOAT": "float4", "DOUBLE": "float8",
    "DATE": "date", "TIME": "time", "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "INTERVAL": "interval", "UUID": "varchar", "BLOB": "varbyte",
}


def type_name(duck_type: Any) -> str:
    """Redshift's name for a DuckDB result type."""
    text = str(duck_type).upper()
    if text.startswith("DECIMAL"):
        return "numeric"
    return _TYPE_NAMES.get(text, text.lower())


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _bare(name: str) -> str:
    """A table name as catalog functions take it (quotes removed, unquoted folded to lower case)."""
    if name.startswith('"') and name.endswith('"'):
        return name[1:-1].replace('""', '"')
    return name.lower()


class DuckSession:
    def __init__(self, cursor: duckdb.DuckDBPyConnection):
        self._cursor = cursor

    def begin(self) -> None:
        self._cursor.begin()

    def commit(self) -> None:
        self._cursor.commit()

    def rollback(self) -> None:
        try:
            self._cursor.rollback()
        except duckdb.Error:
            pass  # nothing to roll back (the failed statement already ended it)

    def run(self, sql: str, *, query: bool) -> Result:
        self._cursor.execute(sql)
        if query:
            description = self._cursor.description or []
            rows = [tuple(r) for r in self._cursor.fetchall()]
            return Result([Column(d[0], type_name(d[1])) for d in description], rows, len(rows))
        rows = self._cursor.fetchall() if self._cursor.description else []
        count = rows[0][0] if rows and rows[0] and isinstance(rows[0][0], int) else 0
        return Result(rowcount=count)

    def run_params(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(sql, list(params))
        return [tuple(r) for r in self._cursor.fetchall()] if self._cursor.description else []

    def column_types(self, table: str) -> dict[str, str] | None:
        try:
            rows = self._cursor.execute("SELECT name, type FROM pragma_table_info(?)", [_bare(table)]).fetchall()
        except duckdb.CatalogException:
            return None
        return {name: str(kind) for name, kind in rows} or None

    def load_json(self, table: str, columns: list[tuple[str, str]], objects: list[bytes], gzip: bool,
                  paths: list[Any] | None = None) -> int:
        """Append NDJSON objects to ``table``: DuckDB's reader parses JSON numbers straight
        into DECIMAL, exactly, and gzip on the fly; the bytes go through a temporary
        directory because read_json reads files. With JSONPaths, each line is read as one
        JSON value and column i is ``CAST(v->>path_i AS type)`` (``->>`` gives a string's
        text as it is, so quoted money stays exact)."""
        if not objects:
            return 0
        with tempfile.TemporaryDirectory(prefix="shopstream-copy-") as tmp:
            files = []
            for i, data in enumerate(objects):
                path = Path(tmp) / (f"part-{i:05d}.json" + (".gz" if gzip else ""))
                path.write_bytes(data)
                files.append(_literal(str(path)))
            names = ", ".join(_quote(name) for name, _ in columns)
            compression = "gzip" if gzip else "none"
            if paths is None:
                struct = "{" + ", ".join(f"{_literal(name)}: {_literal(kind)}" for name, kind in columns) + "}"
                source = (f"SELECT {names} FROM read_json([{', '.join(files)}], format = 'newline_delimited', "
                          f"compression = '{compression}', columns = {struct})")
            else:
                picked = ", ".join(
                    f"CAST(v->>{path.index if path.index is not None else _literal(path.key)} AS {kind})"
                    for path, (_, kind) in zip(paths, columns))
                source = (f"SELECT {picked} FROM read_json([{', '.join(files)}], format = 'newline_delimited', "
                          f"records = false, compression = '{compression}', columns = {{'v': 'JSON'}})")
            rows = self._cursor.execute(f"INSERT INTO {table} ({names}) {source}").fetchall()
        return int(rows[0][0]) if rows else 0

    def analyze(self, table: str) -> None:
        """Nothing to do: DuckDB keeps its statistics as it writes."""

    # materialized views: emulated by a table rebuilt from the remembered definition
    def create_materialized_view(self, name: str, query: str) -> None:
        self._cursor.execute(f"CREATE TABLE {name} AS {query}")

    def refresh_materialized_view(self, name: str, query: str) -> None:
        self._cursor.execute(f"CREATE OR REPLACE TABLE {name} AS {query}")

    def drop(self, name: str, kind: str, *, if_exists: bool = True) -> None:
        what = "VIEW" if kind == "view" else "TABLE"  # an emulated materialized view is a table
        self._cursor.execute(f"DROP {what} {'IF EXISTS ' if if_exists else ''}{name}")

    def close(self, *, temporary: bool) -> None:
        self._cursor.close()  # its temporary tables go with it


class DuckBackend:
    name = NAME
    param = PARAM
    errors: tuple[type[BaseException], ...] = (duckdb.Error,)

    def __init__(self, path: Path | str):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._connection = duckdb.connect(self.path)
        self._lock = threading.Lock()  # cursor() on the shared connection, one thread at a time

    def session(self) -> DuckSession:
        with self._lock:
            return DuckSession(self._connection.cursor())

    def release(self, session: DuckSession, *, temporary: bool) -> None:
        session.close(temporary=temporary)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

