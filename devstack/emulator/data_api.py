"""The emulator's Redshift Data API, backed by the local warehouse.

moto's redshift-data stores a statement and answers every GetStatementResult with the
same canned table (and has no BatchExecuteStatement). The start-up patches
(:mod:`devstack.emulator.patches`, ``redshift-data``) route its actions here instead, so
everything that speaks the Data API — the scheduled merge Lambda, the local Firehose's
COPY, ``shopstream sql``, the dashboard — runs real SQL on the local warehouse
(:class:`devstack.warehouse.LocalWarehouse`: DuckDB by default, PostgreSQL by URL), and
the emulator process is the one that owns it (DuckDB allows one process per file).

Where the warehouse is comes from the emulator's environment, set by
:meth:`devstack.emulator.Emulator.start`:

* ``SHOPSTREAM_WAREHOUSE_URL`` — ``postgresql://…`` or ``duckdb:///…``; empty: DuckDB in
  ``SHOPSTREAM_WAREHOUSE_DIR`` (a temporary directory when that is unset too);
* ``SHOPSTREAM_WAREHOUSE_FRESH=1`` — drop what shopstream created there when the emulator
  first opens it (the emulator's other state is in memory and starts empty: a warehouse
  left from an earlier stack would not reconcile with it).

The contract kept: ExecuteStatement / BatchExecuteStatement return an ``Id`` at once and
run the SQL in the background (a batch in one transaction, all or nothing);
DescribeStatement reports SUBMITTED → STARTED → FINISHED or FAILED with Redshift's
fields (Duration in nanoseconds, ResultRows, HasResultSet, SubStatements ``<id>:<n>``
for a batch); GetStatementResult pages typed records (numeric, dates and timestamps as
strings, integers as longValue, booleans, NULL as isNull) with ColumnMetadata. A short
statement usually finishes before its ExecuteStatement returns (the call waits up to
:data:`SYNC_WAIT_SECONDS`), so a client's first DescribeStatement finds it done.
COPY reads the S3 objects its manifest lists straight from the emulator's S3.
"""
from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

log = logging.getLogger("devstack.emulator.data_api")

ENV_URL = "SHOPSTREAM_WAREHOUSE_URL"
ENV_DIR = "SHOPSTREAM_WAREHOUSE_DIR"
ENV_FRESH = "SHOPSTREAM_WAREHOUSE_FRESH"
DUCKDB_FILE = "shopstream.duckdb"
SYNC_WAIT_SECONDS = 1.0
PAGE_ROWS = 10_000          # records per GetStatementResult page (AWS pages by 100 MB)
KEPT_STATEMENTS = 2_000     # statements remembered for Describe/GetStatementResult
WORKERS = 4


class DataApiError(Exception):
    """An error the Data API answers with: ``code`` is its __type."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class _Run:
    """One statement (or one statement of a batch)."""

    id: str
    sql: str
    created_at: float
    status: str = "SUBMITTED"
    error: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    result: Any = None  # warehouse.results.Result

    def describe(self) -> dict[str, Any]:
        result = self.result
        out: dict[str, Any] = {
            "Id": self.id,
            "QueryString": self.sql,
            "Status": self.status,
            "CreatedAt": self.created_at,
            "UpdatedAt": self.ended_at or self.started_at or self.created_at,
            "Duration": int(((self.ended_at or time.time()) - (self.started_at or self.created_at)) * 1e9)
            if self.started_at else -1,
            "HasResultSet": bool(result is not None and result.columns),
            "ResultRows": result.rowcount if result is not None else -1,
            "ResultSize": -1,
        }
        if self.error is not None:
            out["Error"] = self.error
        return out


@dataclass
class _Statement:
    run: _Run
    target: dict[str, str]
    batch: list[_Run] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def describe(self) -> dict[str, Any]:
        out = {**self.run.describe(), **self.target, "RedshiftPid": 1073741824, "RedshiftQueryId": 0}
        if self.batch:
            out["IsBatchStatement"] = True
            out["HasResultSet"] = False
            out["ResultRows"] = -1 if self.run.status != "FINISHED" else sum(
                max(0, r.result.rowcount) for r in self.batch if r.result is not None)
            out["SubStatements"] = [r.describe() for r in self.batch]
        else:
            out["IsBatchStatement"] = False
        return out


# -- values as the Data API writes them ----------------------------------------------------
def _field(value: Any, type_name: str) -> dict[str, Any]:
    if value is None:
        return {"isNull": True}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int) and type_name in ("int2", "int4", "int8"):
        return {"longValue": value}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, Decimal):
        return {"stringValue": format(value, "f")}
    if isinstance(value, datetime):
        return {"stringValue": value.isoformat(sep=" ")}
    if isinstance(value, date):
        return {"stringValue": value.isoformat()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"blobValue": bytes(value)}
    if isinstance(value, int):
        return {"longValue": value}
    return {"stringValue": str(value)}


def _column(column: Any) -> dict[str, Any]:
    kind = column.type_name
    return {
        "name": column.name, "label": column.name, "typeName": kind, "nullable": 1,
        "isSigned": kind in ("int2", "int4", "int8", "numeric", "float4", "float8"),
        "isCaseSensitive": kind == "varchar", "isCurrency": False, "precision": 0, "scale": 0,
        "length": 0, "schemaName": "", "tableName": "", "columnDefault": None,
    }


def _moto_object_reader(bucket: str, key: str) -> bytes:
    """An object of the emulator's own S3 (any account), for COPY."""
    from moto.s3.models import s3_backends

    for account in list(s3_backends.keys()):
        backend = s3_backends[account]["global"]
        if bucket in backend.buckets:
            return backend.get_object(bucket, key).value
    raise FileNotFoundError(f"s3://{bucket}/{key}: no such bucket in the emulator")


def open_from_environment() -> Any:
    """The local warehouse the environment describes (see the module docstring)."""
    from devstack.warehouse import LocalWarehouse
    from devstack.warehouse.engine import redacted_url

    url = os.environ.get(ENV_URL) or None
    directory = os.environ.get(ENV_DIR) or tempfile.mkdtemp(prefix="shopstream-warehouse-")
    Path(directory).mkdir(parents=True, exist_ok=True)
    warehouse = LocalWarehouse.open(url, duckdb_path=Path(directory) / DUCKDB_FILE, object_reader=_moto_object_reader)
    if os.environ.get(ENV_FRESH) == "1":
        warehouse.reset()
    log.info("local warehouse: %s", redacted_url(url) if url else Path(directory) / DUCKDB_FILE)
    return warehouse


class LocalDataApi:
    """Statements submitted, run in the background on the warehouse, described, paged."""

    def __init__(self, opener: Callable[[], Any] = open_from_environment, *, sync_wait: float = SYNC_WAIT_SECONDS,
                 page_rows: int = PAGE_ROWS, kept: int = KEPT_STATEMENTS) -> None:
        self._opener = opener
        self._warehouse: Any = None
        self._open_lock = threading.Lock()
        self._lock = threading.Lock()
        self._statements: OrderedDict[str, _Statement] = OrderedDict()
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="data-api")
        self.sync_wait, self.page_rows, self.kept = sync_wait, page_rows, kept

    @property
    def warehouse(self) -> Any:
        if self._warehouse is None:
            with self._open_lock:
                if self._warehouse is None:
                    self._warehouse = self._opener()
        return self._warehouse

    # -- actions -------------------------------------------------------------------------
    def execute_statement(self, sql: str | None, target: dict[str, str]) -> dict[str, Any]:
        if not sql or not sql.strip():
            raise DataApiError("ValidationException", "Sql must not be empty")
        statement = self._register(_Statement(_Run(str(uuid.uuid4()), sql, time.time()), target))
        self._pool.submit(self._run_one, statement)
        statement.done.wait(self.sync_wait)
        return {"Id": statement.run.id, "CreatedAt": statement.run.created_at, **target}

    def batch_execute_statement(self, sqls: list[str] | None, target: dict[str, str]) -> dict[str, Any]:
        if not sqls or any(not s or not s.strip() for s in sqls):
            raise DataApiError("ValidationException", "Sqls must hold 1 to 40 non-empty statements")
        if len(sqls) > 40:
            raise DataApiError("ValidationException", f"Sqls holds {len(sqls)} statements; the limit is 40")
        statement_id = str(uuid.uuid4())
        now = time.time()
        batch = [_Run(f"{statement_id}:{n}", sql, now) for n, sql in enumerate(sqls, start=1)]
        statement = self._register(_Statement(_Run(statement_id, "; ".join(sqls), now), target, batch))
        self._pool.submit(self._run_batch, statement)
        statement.done.wait(self.sync_wait)
        return {"Id": statement_id, "CreatedAt": now, **target}

    def describe_statement(self, statement_id: str | None) -> dict[str, Any]:
        statement, sub = self._find(statement_id)
        if sub is not None:
            return {**sub.describe(), **statement.target}
        return statement.describe()

    def get_statement_result(self, statement_id: str | None, next_token: str | None = None) -> dict[str, Any]:
        statement, sub = self._find(statement_id)
        run = sub or statement.run
        if statement.batch and sub is None:
            raise DataApiError("ValidationException", "a batch statement has results per sub-statement: ask for <id>:<n>")
        if run.status != "FINISHED":
            raise DataApiError("ValidationException", f"Query not completed: statement {run.id} is {run.status}"
                               + (f" ({run.error})" if run.error else ""))
        result = run.result
        if result is None or not result.columns:
            raise DataApiError("ValidationException", f"statement {run.id} has no result set")
        try:
            start = int(next_token or 0)
        except ValueError:
            raise DataApiError("ValidationException", f"NextToken {next_token!r} is not one this endpoint gave") from None
        rows = result.rows[start:start + self.page_rows]
        types = [c.type_name for c in result.columns]
        out: dict[str, Any] = {
            "ColumnMetadata": [_column(c) for c in result.columns],
            "Records": [[_field(v, t) for v, t in zip(row, types)] for row in rows],
            "TotalNumRows": len(result.rows),
        }
        if start + self.page_rows < len(result.rows):
            out["NextToken"] = str(start + self.page_rows)
        return out

    def cancel_statement(self, statement_id: str | None) -> dict[str, Any]:
        statement, _ = self._find(statement_id)
        if statement.run.status in ("FINISHED", "FAILED", "ABORTED"):
            raise DataApiError("ValidationException",
                               f"Could not cancel a query that is already in {statement.run.status} state")
        return {"Status": False}  # a running statement runs to its end locally

    def list_statements(self, status: str | None = None, max_results: int = 100) -> dict[str, Any]:
        with self._lock:
            statements = list(reversed(self._statements.values()))
        items = [s.describe() for s in statements if status in (None, "ALL", s.run.status)][:max_results]
        keep = ("Id", "QueryString", "Status", "CreatedAt", "UpdatedAt", "IsBatchStatement")
        return {"Statements": [{k: item[k] for k in keep if k in item} for item in items]}

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._warehouse is not None:
            self._warehouse.close()

    # -- running -------------------------------------------------------------------------
    def _register(self, statement: _Statement) -> _Statement:
        with self._lock:
            self._statements[statement.run.id] = statement
            while len(self._statements) > self.kept:
                oldest_id, oldest = next(iter(self._statements.items()))
                if not oldest.done.is_set():
                    break
                del self._statements[oldest_id]
        return statement

    def _run_one(self, statement: _Statement) -> None:
        run = statement.run
        run.status, run.started_at = "STARTED", time.time()
        try:
            run.result = self.warehouse.execute(run.sql)
            run.status = "FINISHED"
        except Exception as exc:  # reported to the client as Redshift reports a failed statement
            run.status, run.error = "FAILED", f"ERROR: {exc}"
            log.warning("statement %s failed: %s", run.id, exc)
        finally:
            run.ended_at = time.time()
            statement.done.set()

    def _run_batch(self, statement: _Statement) -> None:
        run = statement.run
        now = time.time()
        run.status, run.started_at = "STARTED", now
        for sub in statement.batch:
            sub.status, sub.started_at = "STARTED", now
        try:
            results = self.warehouse.execute_batch([sub.sql for sub in statement.batch])
        except Exception as exc:
            failed_at = getattr(exc, "index", None)
            run.status, run.error = "FAILED", f"ERROR: {exc}"
            for n, sub in enumerate(statement.batch):
                sub.status = "FAILED" if failed_at in (None, n) else "ABORTED"
                sub.error = run.error if sub.status == "FAILED" else None
            log.warning("batch %s failed: %s", run.id, exc)
        else:
            run.status = "FINISHED"
            for sub, result in zip(statement.batch, results or [None] * len(statement.batch)):
                sub.status, sub.result = "FINISHED", result
        finally:
            end = time.time()
            run.ended_at = end
            for sub in statement.batch:
                sub.ended_at = end
            statement.done.set()

    def _find(self, statement_id: str | None) -> tuple[_Statement, _Run | None]:
        if not statement_id:
            raise DataApiError("ValidationException", "Id is required")
        base, _, number = statement_id.partition(":")
        with self._lock:
            statement = self._statements.get(base)
        if statement is None:
            raise DataApiError("ResourceNotFoundException", f"Query {statement_id} does not exist", 400)
        if not number:
            return statement, None
        try:
            return statement, statement.batch[int(number) - 1]
        except (ValueError, IndexError):
            raise DataApiError("ResourceNotFoundException", f"Query {statement_id} does not exist", 400) from None


_api: LocalDataApi | None = None
_api_lock = threading.Lock()


def api() -> LocalDataApi:
    """The emulator's one Data API (and so its one owner of the local warehouse)."""
    global _api
    if _api is None:
        with _api_lock:
            if _api is None:
                _api = LocalDataApi()
    return _api
