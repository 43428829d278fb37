"""The PostgreSQL backend of the local warehouse (psycopg 3): a small pool of autocommit
connections, one per session, reset before reuse."""
from __future__ import annotations

import gzip as gzip_module
import threading
import uuid
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from warehouse.results import Column, Result

NAME = "postgresql"
PARAM = "%s"
POOL_SIZE = 8

# Redshift reports TEXT (and unknown literals) as varchar; the rest are PostgreSQL's own
# names, which Redshift shares (int4, int8, numeric, bool, timestamp, …).
_RENAMED = {"text": "varchar", "unknown": "varchar", "name": "varchar"}


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class PgSession:
    def __init__(self, connection: psycopg.Connection):
        self._connection = connection

    def begin(self) -> None:
        self._connection.execute("BEGIN")

    def commit(self) -> None:
        self._connection.execute("COMMIT")

    def rollback(self) -> None:
        if self._connection.info.transaction_status != TransactionStatus.IDLE:
            self._connection.execute("ROLLBACK")

    def _type_name(self, oid: int) -> str:
        info = self._connection.adapters.types.get(oid)
        name = info.name if info is not None else "unknown"
        return _RENAMED.get(name, name)

    def run(self, sql: str, *, query: bool) -> Result:
        with self._connection.cursor() as cursor:
            cursor.execute(sql)
            if cursor.description is not None:
                rows = [tuple(r) for r in cursor.fetchall()]
                columns = [Column(d.name, self._type_name(d.type_code)) for d in cursor.description]
                return Result(columns, rows, len(rows))
            return Result(rowcount=max(cursor.rowcount, 0))

    def run_params(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [tuple(r) for r in cursor.fetchall()] if cursor.description is not None else []

    def column_types(self, table: str) -> dict[str, str] | None:
        rows = self.run_params(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (table,),
        )
        return {name: kind for name, kind in rows} or None

    def load_json(self, table: str, columns: list[tuple[str, str]], objects: list[bytes], gzip: bool,
                  paths: list[Any] | None = None) -> int:
        """Append NDJSON objects to ``table``: the lines stream into a one-column temporary
        table by COPY FROM STDIN (CSV with quote and delimiter bytes JSON text cannot hold,
        so every line arrives verbatim), then one INSERT … SELECT through
        ``json_populate_record``, which matches keys to the table's column names and reads
        each value with the column's own type (a JSON number read as NUMERIC is exact), as
        Redshift's JSON 'auto' does — or, with JSONPaths, ``CAST(doc->>path AS type)`` per
        column (``->>`` of an array element or key; a quoted number is read as the
        column's NUMERIC, exactly). The table is analyzed afterwards, as Redshift's COPY
        keeps its statistics current; PostgreSQL's own autovacuum may have last seen it
        empty (after a merge) and plan the next merge as if it still were."""
        if not objects:
            return 0
        scratch = f"_shopstream_copy_{uuid.uuid4().hex[:12]}"
        with self._connection.cursor() as cursor:
            cursor.execute(f"CREATE TEMP TABLE {scratch} (doc text)")
            with cursor.copy(f"COPY {scratch} (doc) FROM STDIN (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')") as copy:
                for data in objects:
                    text = gzip_module.decompress(data) if gzip else data
                    copy.write(text)
                    if text and not text.endswith(b"\n"):
                        copy.write(b"\n")
            names = ", ".join(_quote(name) for name, _ in columns)
            if paths is None:
                picked = ", ".join(f"r.{_quote(name)}" for name, _ in columns)
                cursor.execute(f"INSERT INTO {table} ({names}) SELECT {picked} FROM {scratch} s "
                               f"CROSS JOIN LATERAL json_populate_record(NULL::{table}, CAST(s.doc AS json)) r "
                               f"WHERE s.doc IS NOT NULL AND s.doc <> ''")
            else:
                picked = ", ".join(
                    f"CAST(CAST(s.doc AS json)->>{path.index if path.index is not None else _literal(path.key)} AS {kind})"
                    for path, (_, kind) in zip(paths, columns))
                cursor.execute(f"INSERT INTO {table} ({names}) SELECT {picked} FROM {scratch} s "
                               f"WHERE s.doc IS NOT NULL AND s.doc <> ''")
            loaded = max(cursor.rowcount, 0)
            cursor.execute(f"DROP TABLE {scratch}")
            cursor.execute(f"ANALYZE {table}")
        return loaded

    def analyze(self, table: str) -> None:
        """Gather the planner's statistics now (autovacuum never analyzes temporary tables)."""
        self._connection.execute(f"ANALYZE {table}")

    def create_materialized_view(self, name: str, query: str) -> None:
        self._connection.execute(f"CREATE MATERIALIZED VIEW {name} AS {query}")

    def refresh_materialized_view(self, name: str, query: str) -> None:
        self._connection.execute(f"REFRESH MATERIALIZED VIEW {name}")

    def drop(self, name: str, kind: str, *, if_exists: bool = True) -> None:
        what = {"view": "VIEW", "materialized view": "MATERIALIZED VIEW"}.get(kind, "TABLE")
        self._connection.execute(f"DROP {what} {'IF EXISTS ' if if_exists else ''}{name} CASCADE")

    @property
    def connection(self) -> psycopg.Connection:
        return self._connection


class PgBackend:
    """Sessions are pooled connections: a thread takes one, runs, gives it back. Readers
    on different threads run at the same time, each on its own connection."""

    name = NAME
    param = PARAM
    errors: tuple[type[BaseException], ...] = (psycopg.Error,)

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE):
        self.url = url
        self._pool_size = pool_size
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self.release(self.session(), temporary=False)  # fail now, with the URL, if it cannot connect

    def session(self) -> PgSession:
        with self._lock:
            if self._closed:
                raise RuntimeError("the local warehouse is closed")
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            # Redshift hash-joins its equijoins; a PostgreSQL nested loop over two large
            # unindexed tables, chosen on a low row estimate, runs for hours instead. No
            # server-side prepared statements: DISCARD ALL ends each session's own.
            connection = psycopg.connect(self.url, autocommit=True, prepare_threshold=None,
                                         options="-c enable_nestloop=off")
        return PgSession(connection)

    def release(self, session: PgSession, *, temporary: bool) -> None:
        connection = session.connection
        try:
            if not connection.closed:
                if connection.info.transaction_status != TransactionStatus.IDLE:
                    connection.execute("ROLLBACK")
                # a Data API statement is a session of its own: temporary tables, SET,
                # PREPARE and the like end with it (startup options such as
                # enable_nestloop are the session's defaults and stay)
                connection.execute("DISCARD ALL")
        except psycopg.Error:
            connection.close()
        with self._lock:
            if connection.closed or self._closed or len(self._idle) >= self._pool_size:
                connection.close()
            else:
                self._idle.append(connection)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
