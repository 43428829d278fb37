"""The S3 adapter of the archive: puts objects through the project's client factory (so
the emulator's endpoint is honoured; pyarrow's own S3FileSystem ignores AWS_ENDPOINT_URL)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import translate


class S3ArchiveStore:
    def __init__(self, s3_client: Any, bucket: str):
        self._s3 = s3_client
        self.bucket = bucket

    def put(self, key: str, body: bytes) -> None:
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/vnd.apache.parquet")
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"PutObject s3://{self.bucket}/{key}") from exc

    def get(self, key: str) -> bytes:
        try:
            return self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"GetObject s3://{self.bucket}/{key}") from exc

    def keys(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix``, in key order."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            try:
                page = self._s3.list_objects_v2(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, f"ListObjectsV2 s3://{self.bucket}/{prefix}") from exc
            for item in page.get("Contents", []):
                yield item["Key"]
            if not page.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = page["NextContinuationToken"]
