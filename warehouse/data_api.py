"""The Redshift Data API as a :class:`warehouse.loader.StatementExecutor`.

``ExecuteStatement`` / ``BatchExecuteStatement`` submit, ``DescribeStatement`` is polled
until the statement ends, ``GetStatementResult`` pages through the rows. Works the same
against a provisioned cluster (``ClusterIdentifier``) and a Serverless workgroup
(``WorkgroupName``), authenticated with the admin secret (``SecretArn``). Locally the
emulator's redshift-data endpoint runs the statements on the local warehouse, so this is
the only way the merge reaches a warehouse, wherever it runs.

Values come back typed by the column's Redshift type: numeric as ``Decimal`` (the Data
API sends it as a string: exact), integers as ``int``, dates and timestamps as
``datetime`` values, NULL as ``None``.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import translate
from pipeline.errors import ShopstreamError, TransientError
from pipeline.retry import backoff_delay
from warehouse.results import Column, Result

# ActiveStatementsExceeded: too many statements running on the target at once
_BUSY = {"ActiveStatementsExceededException", "ActiveSessionsExceededException"}


class StatementFailed(ShopstreamError):
    """Redshift ran the statement and it failed (its error message, and the SQL's start)."""


def _value(field: dict[str, Any], type_name: str) -> Any:
    if field.get("isNull"):
        return None
    if "longValue" in field:
        return int(field["longValue"])
    if "booleanValue" in field:
        return bool(field["booleanValue"])
    if "doubleValue" in field:
        return float(field["doubleValue"])
    if "blobValue" in field:
        return field["blobValue"]
    text = field.get("stringValue")
    if text is None:
        return None
    kind = type_name.lower()
    if kind in ("numeric", "decimal"):
        return Decimal(text)
    if kind in ("int2", "int4", "int8", "integer", "bigint", "smallint"):
        return int(text)
    if kind == "bool":
        return text.lower() in ("true", "t", "1")
    if kind == "date":
        return date.fromisoformat(text)
    if kind in ("timestamp", "timestamptz"):
        return datetime.fromisoformat(text.replace(" ", "T", 1))
    return text


class DataApiExecutor:
    def __init__(self, client: Any, *, database: str, cluster_id: str | None = None, workgroup: str | None = None,
                 secret_arn: str | None = None, poll_interval: float = 0.05, max_poll_interval: float = 1.0,
                 timeout: float = 840.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if bool(cluster_id) == bool(workgroup):
            raise ValueError("give exactly one of cluster_id and workgroup")
        self._client = client
        self._target: dict[str, str] = {"Database": database}
        self._target.update({"ClusterIdentifier": cluster_id} if cluster_id else {"WorkgroupName": workgroup})  # type: ignore[dict-item]
        if secret_arn:
            self._target["SecretArn"] = secret_arn
        self.poll_interval, self.max_poll_interval, self.timeout = poll_interval, max_poll_interval, timeout
        self._sleep, self._clock = sleep, clock

    @property
    def target(self) -> str:
        return self._target.get("ClusterIdentifier") or f"workgroup {self._target.get('WorkgroupName')}"

    def execute(self, sql: str) -> Result:
        statement_id = self._submit("ExecuteStatement", self._client.execute_statement, Sql=sql)
        description = self._wait(statement_id, sql)
        rowcount = max(0, int(description.get("ResultRows") or 0))
        if not description.get("HasResultSet"):
            return Result(rowcount=rowcount)
        columns: list[Column] = []
        rows: list[tuple[Any, ...]] = []
        kwargs: dict[str, Any] = {"Id": statement_id}
        while True:
            page = self._call("GetStatementResult", self._client.get_statement_result, **kwargs)
            if not columns:
                columns = [Column(c.get("name") or c.get("label") or "", c.get("typeName") or "varchar")
                           for c in page.get("ColumnMetadata", [])]
            types = [c.type_name for c in columns]
            rows.extend(tuple(_value(f, t) for f, t in zip(record, types)) for record in page.get("Records", []))
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        return Result(columns, rows, len(rows))

    def execute_batch(self, sqls: list[str]) -> None:
        if not sqls:
            return
        statement_id = self._submit("BatchExecuteStatement", self._client.batch_execute_statement, Sqls=list(sqls))
        self._wait(statement_id, sqls[0])

    # -- calls ---------------------------------------------------------------------------
    def _call(self, operation: str, method: Callable[..., dict], **kwargs: Any) -> dict:
        try:
            return method(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            error = translate(exc, f"{operation} on {self.target}")
            if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in _BUSY:
                error = TransientError(f"{operation} on {self.target}: the warehouse is busy ({exc})")
            raise error from exc

    def _submit(self, operation: str, method: Callable[..., dict], **kwargs: Any) -> str:
        return self._call(operation, method, **self._target, **kwargs)["Id"]

    def _wait(self, statement_id: str, sql: str) -> dict:
        deadline = self._clock() + self.timeout
        attempt = 0
        while True:
            description = self._call("DescribeStatement", self._client.describe_statement, Id=statement_id)
            status = description.get("Status")
            if status == "FINISHED":
                return description
            if status in ("FAILED", "ABORTED"):
                # a batch names the sub-statement that failed
                failed = [sub for sub in description.get("SubStatements") or [] if sub.get("Status") == "FAILED"]
                where = failed[0].get("QueryString") or sql if failed else sql
                raise StatementFailed(f"{status.lower()} on {self.target}: {description.get('Error') or 'no reason given'}"
                                      f" — in: {' '.join(where.split())[:300]}")
            if self._clock() >= deadline:
                try:
                    self._call("CancelStatement", self._client.cancel_statement, Id=statement_id)
                except ShopstreamError:
                    raise
                except Exception:
                    # it may have ended between the last look and the cancel
                    description = self._call("DescribeStatement", self._client.describe_statement, Id=statement_id)
                    if description.get("Status") == "FINISHED":
                        return description
                    raise
                raise TransientError(f"statement {statement_id} still {status} after {self.timeout:.0f}s; cancelled")
            attempt += 1
            self._sleep(min(self.max_poll_interval, backoff_delay(attempt, self.poll_interval, self.max_poll_interval,
                                                                  uniform=lambda low, high: high)))
