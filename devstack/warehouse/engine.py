"""The local warehouse: Redshift SQL run on DuckDB (default, embedded) or PostgreSQL.

It is a :class:`warehouse.loader.StatementExecutor`, and what the emulator's redshift-data
endpoint runs statements on:

* ``execute(sql)`` runs ONE Redshift statement, translated (:mod:`.dialect`), in a session
  of its own (like ExecuteStatement), and returns a :class:`warehouse.results.Result`
  typed as the Data API types it;
* ``execute_batch(sqls)`` runs statements in order in ONE transaction on one session
  (like BatchExecuteStatement): temporary tables are visible across the batch and die
  with it; any failure rolls everything back.

Threads: one instance serves many request threads. Statements that change something
(everything but queries) take one writer lock, so writes never conflict; queries run
without it, at the same time, each on its own session (a DuckDB cursor, a pooled
PostgreSQL connection), and see the last committed state.

The engine keeps a small catalog table of its own (``shopstream_local_catalog``): every
table, view and materialized view a statement created — so :meth:`reset` drops exactly
what shopstream created, and DuckDB's emulated materialized views remember the query
REFRESH rebuilds them from.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from devstack.warehouse import dialect
from devstack.warehouse.copy import ObjectReader, read_jsonpaths, read_objects
from devstack.warehouse.errors import CopyError, DialectError, WarehouseError
from warehouse.results import Result

CATALOG = "shopstream_local_catalog"
BatchObserver = Callable[[int, str], None]

_CATALOG_DDL = (f"CREATE TABLE IF NOT EXISTS {CATALOG} (name VARCHAR NOT NULL PRIMARY KEY, "
                f"kind VARCHAR NOT NULL, definition VARCHAR)")
_DROP_ORDER = (dialect.VIEW, dialect.MATERIALIZED_VIEW, dialect.TABLE)


class _Refused(Exception):
    """A statement the engine itself refuses (e.g. REFRESH of something not a materialized view)."""


def _backend_for(url: str | None, duckdb_path: Path | None) -> Any:
    if url is None or url.startswith("duckdb:"):
        from devstack.warehouse._duckdb import DuckBackend

        if url is None:
            if duckdb_path is None:
                raise ValueError("LocalWarehouse.open: give a URL, or duckdb_path for the default DuckDB file")
            return DuckBackend(duckdb_path)
        path = url[len("duckdb:"):]
        if path.startswith("//"):
            path = path[2:]
        if path in ("/:memory:", ":memory:"):
            path = ":memory:"  # one process's private database (tests, scratch work)
        if not path:
            raise ValueError(f"{url!r}: a DuckDB URL names a file, e.g. duckdb:///var/shopstream/warehouse.duckdb")
        return DuckBackend(path)
    if url.startswith(("postgresql://", "postgres://")):
        from devstack.warehouse._postgres import PgBackend

        return PgBackend(url)
    raise ValueError(f"unsupported warehouse URL {url!r}: use duckdb:///path/file.duckdb or "
                     f"postgresql://user@host:port/db")


class LocalWarehouse:
    def __init__(self, backend: Any, *, object_reader: ObjectReader | None = None,
                 batch_observer: BatchObserver | None = None):
        self._backend = backend
        self._object_reader = object_reader
        self._batch_observer = batch_observer
        self._write_lock = threading.Lock()
        self._target = dialect.DUCKDB if backend.name == "duckdb" else dialect.POSTGRES
        with self._write_lock:
            self._with_session(lambda s: s.run(_CATALOG_DDL, query=False), _CATALOG_DDL)

    @classmethod
    def open(cls, url: str | None = None, *, duckdb_path: Path | None = None,
             object_reader: ObjectReader | None = None, batch_observer: BatchObserver | None = None) -> LocalWarehouse:
        """``None`` or ``duckdb:///path/file.duckdb`` → DuckDB (``None`` uses ``duckdb_path``);
        ``postgresql://user@host:port/db`` → PostgreSQL. ``object_reader(bucket, key)``
        returns an S3 object's bytes for COPY. ``batch_observer(index, sql)`` is a test
        seam: called after each statement of a batch, inside its transaction."""
        try:
            backend = _backend_for(url, duckdb_path)
        except ValueError:
            raise
        except Exception as exc:  # the driver's own error (no such file, refused connection …), named
            raise WarehouseError(f"cannot open the local warehouse {redacted_url(url) if url else duckdb_path}: "
                                 f"{_message(exc)}",
                                 statement="", backend="local warehouse") from exc
        return cls(backend, object_reader=object_reader, batch_observer=batch_observer)

    @property
    def backend(self) -> str:
        """``duckdb`` or ``postgresql``."""
        return self._backend.name

    # ---- the StatementExecutor protocol -----------------------------------------------------

    def execute(self, sql: str) -> Result:
        session = self._backend.session()
        temporary = False
        try:
            translation = self._translate(sql, session)
            if isinstance(translation, dialect.Query):
                return self._run(session, translation.sql, sql, query=True)
            objects = self._objects(translation, sql)
            temporary = (translation.temporary if isinstance(translation, dialect.Command)
                         else isinstance(translation, dialect.Copy))  # COPY stages lines in a temporary table
            with self._write_lock:
                own_transaction = not isinstance(translation, dialect.Command) or bool(
                    translation.creates or translation.drops)
                if own_transaction:
                    session.begin()
                try:
                    result = self._apply(session, translation, sql, objects)
                    if own_transaction:
                        session.commit()
                except BaseException:
                    if own_transaction:
                        session.rollback()
                    raise
                return result
        finally:
            self._backend.release(session, temporary=temporary)

    def execute_batch(self, sqls: Sequence[str]) -> list[Result]:
        """Every statement in one transaction; the result of each, in order."""
        sqls = list(sqls)
        if not sqls:
            return []
        results: list[Result] = []
        session = self._backend.session()
        try:
            translations = []
            objects = []
            for index, sql in enumerate(sqls):
                try:
                    translation = self._translate(sql, session)
                except WarehouseError as exc:
                    raise WarehouseError(exc.reason, statement=sql, backend=self.backend, index=index,
                                         batch_size=len(sqls)) from exc
                translations.append(translation)
                objects.append(self._objects(translation, sql, index=index, batch_size=len(sqls)))
            with self._write_lock:
                session.begin()
                try:
                    for index, (sql, translation) in enumerate(zip(sqls, translations)):
                        results.append(self._apply(session, translation, sql, objects[index], index=index,
                                                   batch_size=len(sqls)))
                        if self._batch_observer is not None:
                            self._batch_observer(index, sql)
                    self._commit(session, sqls)
                except BaseException:
                    session.rollback()
                    raise
        finally:
            self._backend.release(session, temporary=True)
        return results

    # ---- local housekeeping -------------------------------------------------------------------

    def reset(self) -> None:
        """Drop every table, view and materialized view shopstream created here (views
        first, then materialized views, then tables), leaving an empty warehouse."""
        with self._write_lock:
            def drop_all(session: Any) -> None:
                session.begin()
                try:
                    entries = session.run_params(f"SELECT name, kind FROM {CATALOG}")
                    for kind in _DROP_ORDER:
                        for name, entry_kind in entries:
                            if entry_kind == kind:
                                session.drop(name, kind)
                    session.run_params(f"DELETE FROM {CATALOG}")
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise

            self._with_session(drop_all, f"reset: drop what {CATALOG} lists")

    def catalog(self) -> dict[str, str]:
        """What shopstream created here: name → kind (table, view, materialized view)."""
        query = f"SELECT name, kind FROM {CATALOG}"
        rows = self._with_session(lambda s: s.run_params(query), query)
        return {name: kind for name, kind in rows}

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> LocalWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals ------------------------------------------------------------------------------

    def _with_session(self, work: Callable[[Any], Any], what: str) -> Any:
        session = self._backend.session()
        try:
            return work(session)
        except self._backend.errors as exc:
            raise WarehouseError(_message(exc), statement=what, backend=self.backend) from exc
        finally:
            self._backend.release(session, temporary=False)

    def _translate(self, sql: str, session: Any) -> dialect.Translation:
        try:
            return dialect.translate(sql, self._target, column_types=session.column_types)
        except DialectError as exc:
            raise WarehouseError(exc.reason, statement=sql, backend=self.backend) from exc

    def _objects(self, translation: dialect.Translation, sql: str, **where: Any) -> list[bytes] | None:
        """A COPY's objects, read before the writer lock is taken (reading may be slow)."""
        if not isinstance(translation, dialect.Copy):
            return None
        try:
            return read_objects(self._object_reader, translation.command)
        except CopyError as exc:
            raise WarehouseError(str(exc), statement=sql, backend=self.backend, **where) from exc

    def _run(self, session: Any, translated: str, sql: str, *, query: bool, **where: Any) -> Result:
        try:
            return session.run(translated, query=query)
        except self._backend.errors as exc:
            raise WarehouseError(_message(exc), statement=sql, backend=self.backend, **where) from exc

    def _commit(self, session: Any, sqls: list[str]) -> None:
        try:
            session.commit()
        except self._backend.errors as exc:
            raise WarehouseError(f"the batch of {len(sqls)} statements did not commit: {_message(exc)}",
                                 statement=sqls[-1], backend=self.backend) from exc

    def _apply(self, session: Any, translation: dialect.Translation, sql: str, objects: list[bytes] | None,
               **where: Any) -> Result:
        try:
            if isinstance(translation, dialect.Query):
                return session.run(translation.sql, query=True)
            if isinstance(translation, dialect.Command):
                result = session.run(translation.sql, query=False)
                if translation.analyze is not None:
                    session.analyze(translation.analyze)
                if translation.creates is not None:
                    self._remember(session, translation.creates.name, translation.creates.kind, None)
                for entry in translation.drops:
                    self._forget(session, entry.name)
                return result
            if isinstance(translation, dialect.Copy):
                return Result(rowcount=self._copy(session, translation.command, objects or [], sql))
            if isinstance(translation, dialect.CreateMaterializedView):
                session.create_materialized_view(translation.name, translation.query)
                self._remember(session, translation.name, dialect.MATERIALIZED_VIEW, translation.query)
                return Result()
            if isinstance(translation, dialect.RefreshMaterializedView):
                session.refresh_materialized_view(translation.name, self._definition(session, translation.name, sql))
                return Result()
            if isinstance(translation, dialect.DropMaterializedView):
                for name in translation.names:
                    known = self._kind(session, name) == dialect.MATERIALIZED_VIEW
                    if not known and not translation.if_exists:
                        raise _Refused(f"DROP MATERIALIZED VIEW: {name} is not a materialized view created here")
                    if known:
                        session.drop(name, dialect.MATERIALIZED_VIEW)
                        self._forget(session, name)
                return Result()
            raise TypeError(f"unknown translation {translation!r}")
        except self._backend.errors as exc:
            raise WarehouseError(_message(exc), statement=sql, backend=self.backend, **where) from exc
        except (CopyError, _Refused) as exc:
            raise WarehouseError(str(exc), statement=sql, backend=self.backend, **where) from exc

    def _copy(self, session: Any, command: Any, objects: list[bytes], sql: str) -> int:
        types = session.column_types(command.table)
        if types is None:
            raise CopyError(f"COPY into {command.table}: no such table")
        names = list(command.columns) if command.columns is not None else list(types)
        unknown = [name for name in names if name not in types]
        if unknown:
            raise CopyError(f"COPY into {command.table}: no column {', '.join(unknown)} "
                            f"(the table has {', '.join(types)})")
        paths = (read_jsonpaths(self._object_reader, command.jsonpaths, len(names))
                 if command.jsonpaths is not None else None)
        return session.load_json(command.table, [(name, types[name]) for name in names], objects, command.gzip,
                                 paths=paths)

    def _remember(self, session: Any, name: str, kind: str, definition: str | None) -> None:
        p = self._backend.param
        session.run_params(
            f"INSERT INTO {CATALOG} (name, kind, definition) VALUES ({p}, {p}, {p}) "
            f"ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, definition = excluded.definition",
            (name, kind, definition),
        )

    def _forget(self, session: Any, name: str) -> None:
        session.run_params(f"DELETE FROM {CATALOG} WHERE name = {self._backend.param}", (name,))

    def _kind(self, session: Any, name: str) -> str | None:
        rows = session.run_params(f"SELECT kind FROM {CATALOG} WHERE name = {self._backend.param}", (name,))
        return rows[0][0] if rows else None

    def _definition(self, session: Any, name: str, sql: str) -> str:
        rows = session.run_params(f"SELECT kind, definition FROM {CATALOG} WHERE name = {self._backend.param}",
                                  (name,))
        if not rows or rows[0][0] != dialect.MATERIALIZED_VIEW:
            raise _Refused(f"REFRESH: {name} is not a materialized view created here")
        return rows[0][1]


def redacted_url(url: str) -> str:
    """A database URL without its password (for messages and logs)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _message(exc: BaseException) -> str:
    """The backend's own message, on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__
