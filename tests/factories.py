"""Shared test factories: invoice events, raw rows, Lambda contexts and API Gateway events."""
from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pipeline.events import InvoiceEvent, InvoiceLine


def line(line_no: int = 1, stock_code: str = "85123A", description: str | None = "WHITE HANGING HEART T-LIGHT HOLDER",
         quantity: int = 6, unit_price: str = "2.55", invoice_date: str | None = None) -> InvoiceLine:
    return InvoiceLine(line_no, stock_code, description, quantity, Decimal(unit_price), invoice_date)


def event(invoice_no: str = "536365", *, invoice_date: str = "2010-12-01T08:26:00", customer_id: str | None = "17850",
          country: str = "United Kingdom", lines: list[InvoiceLine] | None = None, n_lines: int = 2,
          status: str | None = None) -> InvoiceEvent:
    if lines is None:
        lines = [line(i, stock_code=f"2{i:04d}", unit_price=f"{i}.25") for i in range(1, n_lines + 1)]
    return InvoiceEvent(invoice_no, invoice_date, customer_id, country, tuple(lines), status)


def event_dict(**overrides: Any) -> dict[str, Any]:
    data = json.loads(event().to_json())
    data.update(overrides)
    return data


def raw_row(invoice_no: str = "536365", stock_code: str = "85123A", quantity: Any = "6", unit_price: Any = "2.55",
            invoice_date: str = "12/1/2010 8:26", customer_id: Any = "17850", country: str = "United Kingdom",
            description: str | None = "WHITE HANGING HEART T-LIGHT HOLDER") -> dict[str, Any]:
    return {"InvoiceNo": invoice_no, "StockCode": stock_code, "Description": description, "Quantity": quantity,
            "InvoiceDate": invoice_date, "UnitPrice": unit_price, "CustomerID": customer_id, "Country": country}


@dataclass
class FakeLambdaContext:
    function_name: str = "shopstream-test"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:shopstream-test"
    aws_request_id: str = ""
    log_group_name: str = "/aws/lambda/shopstream-test"
    log_stream_name: str = "local"

    def __post_init__(self) -> None:
        self.aws_request_id = self.aws_request_id or str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


TRUSTED_CLAIMS = {"sub": "test-producer", "client_id": "test-producer", "token_use": "access",
                  "scope": "shopstream/events.write shopstream/invoices.read"}


def jwt_context(claims: dict[str, str]) -> dict[str, Any]:
    """``requestContext.authorizer`` as API Gateway's JWT authorizer passes it."""
    return {"jwt": {"claims": dict(claims), "scopes": claims.get("scope", "").split() or None}}


def http_event(method: str, path: str, *, body: str | bytes | None = None, query: dict[str, str] | None = None,
               route_key: str | None = None, path_parameters: dict[str, str] | None = None,
               claims: dict[str, str] | None = TRUSTED_CLAIMS) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event; ``claims``: the verified token's
    (by default a trusted producer's with staff's scope too; None: no authorizer context)."""
    is_binary = isinstance(body, bytes)
    event = {
        "version": "2.0",
        "routeKey": route_key or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": {"content-type": "application/json", "host": "localhost"},
        "queryStringParameters": query,
        "pathParameters": path_parameters,
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "localhost", "domainPrefix": "localhost",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "pytest"},
            "requestId": str(uuid.uuid4()), "routeKey": route_key or f"{method} {path}", "stage": "$default",
            "time": "01/Dec/2010:08:26:00 +0000", "timeEpoch": 1291191960000,
        },
        "body": base64.b64encode(body).decode() if is_binary else body,
        "isBase64Encoded": is_binary,
    }
    if claims is not None:
        event["requestContext"]["authorizer"] = jwt_context(claims)
    return event


# ---- the warehouse path: staging objects as Firehose writes them --------------------------------

JSONPATHS_KEY = "jsonpaths/stg_invoice_lines.json"


def staging_copy_options(bucket: str = "staging") -> str:
    """The delivery stream's CopyOptions, as Terraform writes them (the JSONPaths file in ``bucket``)."""
    return f"JSON 's3://{bucket}/{JSONPATHS_KEY}' GZIP TIMEFORMAT 'auto'"


def staging_ndjson(events, *, first_sequence: int = 10**20, arrival_ms: int = 1291191960000) -> bytes:
    """The NDJSON staging rows (one array per line) of ``events`` as the Firehose
    transformation writes them, the i-th event carried by Kinesis sequence number
    ``first_sequence + i``."""
    from firehose.core import OK, SourceRecord, Transformer

    outcomes = Transformer().transform(
        SourceRecord(f"record-{i}", e.to_json(), str(first_sequence + i), 0, arrival_ms + i) for i, e in enumerate(events)
    )
    assert all(o.result == OK for o in outcomes), [o.reason for o in outcomes if o.result != OK]
    return b"".join(o.data for o in outcomes)


class FakeBucket:
    """An in-memory S3 for the local warehouse's COPY: ``reader`` is its object_reader."""

    def __init__(self, name: str = "staging"):
        from warehouse.schema import jsonpaths

        self.name = name
        self.objects: dict[tuple[str, str], bytes] = {}
        self._manifests = 0
        self.put(JSONPATHS_KEY, json.dumps(jsonpaths()).encode())  # what Terraform writes to the delivery bucket

    def reader(self, bucket: str, key: str) -> bytes:
        return self.objects[(bucket, key)]  # KeyError for a missing object, as the reader contract says

    def put(self, key: str, data: bytes) -> str:
        self.objects[(self.name, key)] = data
        return f"s3://{self.name}/{key}"

    def stage(self, *parts: bytes, mandatory: bool = True) -> str:
        """Gzip each part into an object, write a manifest of them; the manifest's URL."""
        import gzip

        self._manifests += 1
        n = self._manifests
        urls = [self.put(f"batch-{n}/part-{i}.json.gz", gzip.compress(p, 1)) for i, p in enumerate(parts)]
        manifest = {"entries": [{"url": u, "mandatory": mandatory} for u in urls]}
        return self.put(f"manifests/batch-{n}.manifest", json.dumps(manifest).encode())


def copy_statement(manifest_url: str, options: str | None = None) -> str:
    """The COPY Firehose sends to Redshift for one manifest (the JSONPaths file in its bucket)."""
    from warehouse.schema import STAGING_COLUMN_NAMES, STAGING_TABLE

    options = options or staging_copy_options(manifest_url.split("/")[2])
    return (f"COPY {STAGING_TABLE} ({', '.join(STAGING_COLUMN_NAMES)}) FROM '{manifest_url}' "
            f"CREDENTIALS 'aws_iam_role=arn:aws:iam::123456789012:role/shopstream-firehose' MANIFEST {options};")


def keyed_rows(ndjson: bytes) -> bytes:
    """Staging rows rewritten as keyed objects (for COPY … JSON 'auto')."""
    from warehouse.schema import STAGING_COLUMN_NAMES

    rows = [json.loads(line) for line in ndjson.decode("utf-8").splitlines() if line]
    return "".join(json.dumps(dict(zip(STAGING_COLUMN_NAMES, row))) + "\n" for row in rows).encode("utf-8")
