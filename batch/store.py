"""The file loader's adapters: the dropped and archived files (S3) and the ledger of
loaded files (DynamoDB). AWS errors are translated at this edge
(:mod:`pipeline.aws_errors`): throttling and outages raise ``TransientError``, so the
invocation fails and S3's asynchronous invocation retries it (every step is idempotent)."""
from __future__ import annotations

import io
import json
import time
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import error_code, translate


class _RawBody(io.RawIOBase):
    """A botocore StreamingBody as a raw stream, so io.BufferedReader gives its lines with their endings
    (the loader counts bytes to know where to resume)."""

    def __init__(self, body: Any):
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._body.read(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        self._body.close()
        super().close()


class S3Files:
    def __init__(self, client: Any):
        self._s3 = client

    def open(self, bucket: str, key: str, offset: int = 0) -> IO[bytes]:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if offset:
            kwargs["Range"] = f"bytes={offset}-"
        try:
            body = self._s3.get_object(**kwargs)["Body"]
        except ClientError as exc:
            if offset and error_code(exc) == "InvalidRange":  # resuming exactly at the end
                return io.BytesIO(b"")
            raise translate(exc, f"GetObject s3://{bucket}/{key}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"GetObject s3://{bucket}/{key}") from exc
        return io.BufferedReader(_RawBody(body), buffer_size=1 << 20)

    def put_json(self, bucket: str, key: str, body: dict[str, Any]) -> None:
        self._call("PutObject", bucket, key, self._s3.put_object, Body=json.dumps(body).encode(),
                   ContentType="application/json")

    def get_json(self, bucket: str, key: str) -> dict[str, Any]:
        return json.loads(self._call("GetObject", bucket, key, self._s3.get_object)["Body"].read())

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise translate(exc, f"HeadObject s3://{bucket}/{key}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"HeadObject s3://{bucket}/{key}") from exc
        return True

    def copy(self, bucket: str, key: str, to_bucket: str) -> None:
        # managed copy: a single CopyObject up to 5 GB, multipart above (a drop can be large)
        try:
            self._s3.copy({"Bucket": bucket, "Key": key}, to_bucket, key)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"copying s3://{bucket}/{key} to s3://{to_bucket}/{key}") from exc

    def delete(self, bucket: str, key: str) -> None:
        self._call("DeleteObject", bucket, key, self._s3.delete_object)

    @staticmethod
    def _call(operation: str, bucket: str, key: str, method, **kwargs: Any) -> dict:
        try:
            return method(Bucket=bucket, Key=key, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"{operation} s3://{bucket}/{key}") from exc


class DynamoFileLedger:
    """One item per file content: ``{file_sha256, status, bucket, key, detail (JSON), updated_at}``
    (``dynamodb:GetItem`` and ``dynamodb:PutItem`` only)."""

    def __init__(self, client: Any, table: str):
        self._client, self._table = client, table

    def get(self, sha256: str) -> dict[str, Any] | None:
        try:
            item = self._client.get_item(TableName=self._table, Key={"file_sha256": {"S": sha256}},
                                         ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"GetItem on table {self._table}") from exc
        if item is None:
            return None
        return json.loads(item["detail"]["S"])

    def put(self, sha256: str, item: dict[str, Any]) -> None:
        try:
            self._client.put_item(TableName=self._table, Item={
                "file_sha256": {"S": sha256}, "status": {"S": item["status"]}, "key": {"S": item["key"]},
                "detail": {"S": json.dumps(item)}, "updated_at": {"N": str(int(time.time()))}})
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"PutItem on table {self._table}") from exc


class InMemoryFiles:
    """Buckets in a dict (tests, and the logic without S3)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def open(self, bucket: str, key: str, offset: int = 0) -> IO[bytes]:
        return io.BytesIO(self.objects[(bucket, key)][offset:])

    def put_json(self, bucket: str, key: str, body: dict[str, Any]) -> None:
        self.objects[(bucket, key)] = json.dumps(body).encode()

    def get_json(self, bucket: str, key: str) -> dict[str, Any]:
        return json.loads(self.objects[(bucket, key)])

    def exists(self, bucket: str, key: str) -> bool:
        return (bucket, key) in self.objects

    def copy(self, bucket: str, key: str, to_bucket: str) -> None:
        self.objects[(to_bucket, key)] = self.objects[(bucket, key)]

    def delete(self, bucket: str, key: str) -> None:
        self.objects.pop((bucket, key), None)


class InMemoryFileLedger:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def get(self, sha256: str) -> dict[str, Any] | None:
        item = self.items.get(sha256)
        return None if item is None else json.loads(json.dumps(item))

    def put(self, sha256: str, item: dict[str, Any]) -> None:
        self.items[sha256] = json.loads(json.dumps(item))


class WarehouseDimensions:
    """The products and customers the warehouse knows (``dim_products``, ``dim_customers``), read once
    through the Data API when the transaction layout first needs them; about 100 bytes a row, 4,000
    products and 4,400 customers for the UCI shop. They are as fresh as the last merge."""

    PRODUCTS = "SELECT stock_code, description FROM dim_products"
    CUSTOMERS = "SELECT customer_id, country FROM dim_customers"

    def __init__(self, executor: Any):
        self._executor = executor
        self._products: dict[str, str | None] | None = None
        self._customers: dict[str, str] | None = None

    def product_description(self, stock_code: str) -> tuple[bool, str | None]:
        if self._products is None:
            self._products = {row[0]: row[1] for row in self._executor.execute(self.PRODUCTS).rows}
        if stock_code in self._products:
            return True, self._products[stock_code]
        return False, None

    def customer_country(self, customer_id: str) -> str | None:
        if self._customers is None:
            self._customers = {row[0]: row[1] for row in self._executor.execute(self.CUSTOMERS).rows}
        return self._customers.get(customer_id)


class KnownDimensions:
    """Dimensions given as dicts (tests)."""

    def __init__(self, products: dict[str, str | None], customers: dict[str, str]):
        self.products, self.customers = products, customers

    def product_description(self, stock_code: str) -> tuple[bool, str | None]:
        return (stock_code in self.products), self.products.get(stock_code)

    def customer_country(self, customer_id: str) -> str | None:
        return self.customers.get(customer_id)
