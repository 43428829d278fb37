"""Settings of every Lambda, read once per cold start from the environment.

The environment variable names below are the contract with Terraform
(``infra/terraform/lambda.tf`` sets exactly these keys per function, and
``tests/contract/test_settings_terraform.py`` proves the two agree).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from pipeline.errors import ConfigurationError

# Set by Terraform, per function.
ENV_STREAM_NAME = "SHOPSTREAM_STREAM_NAME"
ENV_INVOICES_TABLE = "SHOPSTREAM_INVOICES_TABLE"
ENV_OWNERS_TABLE = "SHOPSTREAM_OWNERS_TABLE"
ENV_API_AUTH = "SHOPSTREAM_API_AUTH"  # pipeline/auth.py: "jwt" or "none"
ENV_QUARANTINE_QUEUE_URL = "SHOPSTREAM_QUARANTINE_QUEUE_URL"
ENV_MAX_BODY_BYTES = "SHOPSTREAM_MAX_BODY_BYTES"
ENV_ARCHIVE_BUCKET = "SHOPSTREAM_ARCHIVE_BUCKET"
ENV_ARCHIVE_PREFIX = "SHOPSTREAM_ARCHIVE_PREFIX"
ENV_REDSHIFT_DATABASE = "SHOPSTREAM_REDSHIFT_DATABASE"
ENV_REDSHIFT_CLUSTER = "SHOPSTREAM_REDSHIFT_CLUSTER"
ENV_REDSHIFT_WORKGROUP = "SHOPSTREAM_REDSHIFT_WORKGROUP"
ENV_REDSHIFT_SECRET_ARN = "SHOPSTREAM_REDSHIFT_SECRET_ARN"
ENV_SIZE_MEDIUM_FROM = "SHOPSTREAM_SIZE_MEDIUM_FROM"
ENV_SIZE_LARGE_FROM = "SHOPSTREAM_SIZE_LARGE_FROM"
ENV_NOTIFICATIONS_TABLE = "SHOPSTREAM_NOTIFICATIONS_TABLE"
ENV_LARGE_ORDERS_TOPIC_ARN = "SHOPSTREAM_LARGE_ORDERS_TOPIC_ARN"
ENV_LARGE_ORDER_FROM = "SHOPSTREAM_LARGE_ORDER_FROM"
ENV_DROP_BUCKET = "SHOPSTREAM_DROP_BUCKET"
ENV_DROP_ARCHIVE_BUCKET = "SHOPSTREAM_DROP_ARCHIVE_BUCKET"
ENV_FILES_TABLE = "SHOPSTREAM_FILES_TABLE"
ENV_FILE_OUTCOMES_TOPIC_ARN = "SHOPSTREAM_FILE_OUTCOMES_TOPIC_ARN"
# Set by the Lambda service (AWS_REGION) or, locally, by the local runtime
# (AWS_ENDPOINT_URL, the standard variable boto3 itself honours).
ENV_REGION = "AWS_REGION"
ENV_ENDPOINT_URL = "AWS_ENDPOINT_URL"

# What Terraform must set for each function (keys of the ``functions`` map in
# infra/terraform/lambda.tf). Powertools' own variables come on top of these.
FUNCTION_ENV: Mapping[str, frozenset[str]] = {
    "ingest": frozenset({ENV_STREAM_NAME, ENV_MAX_BODY_BYTES, ENV_OWNERS_TABLE, ENV_API_AUTH}),
    "invoice-writer": frozenset({ENV_INVOICES_TABLE, ENV_QUARANTINE_QUEUE_URL}),
    "query-api": frozenset({ENV_INVOICES_TABLE, ENV_API_AUTH}),
    "archive-writer": frozenset({ENV_ARCHIVE_BUCKET, ENV_ARCHIVE_PREFIX, ENV_QUARANTINE_QUEUE_URL}),
    "firehose-transform": frozenset({ENV_SIZE_MEDIUM_FROM, ENV_SIZE_LARGE_FROM}),
    "order-notifier": frozenset({ENV_NOTIFICATIONS_TABLE, ENV_LARGE_ORDERS_TOPIC_ARN, ENV_LARGE_ORDER_FROM,
                                 ENV_QUARANTINE_QUEUE_URL}),
    # daily files dropped in S3 (batch/): read, grouped, checked against the warehouse's
    # dimensions, put on the stream; one outcome message per file; the file then archived
    "batch": frozenset({ENV_STREAM_NAME, ENV_DROP_BUCKET, ENV_DROP_ARCHIVE_BUCKET, ENV_FILES_TABLE,
                        ENV_FILE_OUTCOMES_TOPIC_ARN, ENV_QUARANTINE_QUEUE_URL, ENV_REDSHIFT_DATABASE,
                        ENV_REDSHIFT_CLUSTER, ENV_REDSHIFT_WORKGROUP, ENV_REDSHIFT_SECRET_ARN}),
    # one of the cluster and the workgroup is empty: the warehouse is one or the other
    "warehouse-merge": frozenset({ENV_REDSHIFT_DATABASE, ENV_REDSHIFT_CLUSTER, ENV_REDSHIFT_WORKGROUP,
                                  ENV_REDSHIFT_SECRET_ARN}),
}
POWERTOOLS_ENV = frozenset({"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"})

# The largest body the ingest function is sure to receive. API Gateway HTTP APIs accept
# 10 MB, but the body reaches Lambda inside the event's JSON, and a synchronous invocation
# takes 6 MB (6,291,456 bytes) of it, envelope included. Escaped into a JSON string, valid
# JSON text grows at most 3x (a 2-byte UTF-8 character written as \uXXXX; a quote or
# backslash doubles) and a base64-encoded body by 4/3, so 2,000,000 bytes of body leave
# the event under 6,000,000 bytes, with room for the headers (at most 10 KB on an HTTP
# API) and the request context. Any JSON body up to this size (and any base64-encoded
# one) is answered by the function; a larger one gets its 413, or API Gateway's when the
# event would not fit.
DEFAULT_MAX_BODY_BYTES = 2_000_000
LAMBDA_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
# Line amounts (absolute, in the shop's currency) from which a line is Medium / Large.
DEFAULT_SIZE_MEDIUM_FROM = Decimal("10")
DEFAULT_SIZE_LARGE_FROM = Decimal("100")
# Invoice total (in the shop's currency) from which an order is announced on the
# large-orders topic (consumers/notifications): 184 of the 25,900 invoices of the UCI
# data reach 5,000.
DEFAULT_LARGE_ORDER_FROM = Decimal("5000")


@dataclass(frozen=True, slots=True)
class Settings:
    region: str
    endpoint_url: str | None = None
    stream_name: str | None = None
    invoices_table: str | None = None
    owners_table: str | None = None
    quarantine_queue_url: str | None = None
    archive_bucket: str | None = None
    archive_prefix: str = "archive/"
    redshift_database: str | None = None
    redshift_cluster: str | None = None
    redshift_workgroup: str | None = None
    redshift_secret_arn: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    size_medium_from: Decimal = DEFAULT_SIZE_MEDIUM_FROM
    size_large_from: Decimal = DEFAULT_SIZE_LARGE_FROM
    notifications_table: str | None = None
    large_orders_topic_arn: str | None = None
    large_order_from: Decimal = DEFAULT_LARGE_ORDER_FROM
    drop_bucket: str | None = None
    drop_archive_bucket: str | None = None
    files_table: str | None = None
    file_outcomes_topic_arn: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        region = env.get(ENV_REGION) or env.get("AWS_DEFAULT_REGION")
        if not region:
            raise ConfigurationError(f"{ENV_REGION} is not set")
        raw_max = env.get(ENV_MAX_BODY_BYTES) or str(DEFAULT_MAX_BODY_BYTES)
        try:
            max_body = int(raw_max)
        except ValueError as exc:
            raise ConfigurationError(f"{ENV_MAX_BODY_BYTES} must be an integer, got {raw_max!r}") from exc
        if max_body <= 0:
            raise ConfigurationError(f"{ENV_MAX_BODY_BYTES} must be positive, got {max_body}")
        sizes = {name: _decimal(env, name, default)
                 for name, default in ((ENV_SIZE_MEDIUM_FROM, DEFAULT_SIZE_MEDIUM_FROM),
                                       (ENV_SIZE_LARGE_FROM, DEFAULT_SIZE_LARGE_FROM),
                                       (ENV_LARGE_ORDER_FROM, DEFAULT_LARGE_ORDER_FROM))}
        return cls(
            region=region,
            endpoint_url=env.get(ENV_ENDPOINT_URL) or None,
            stream_name=env.get(ENV_STREAM_NAME) or None,
            invoices_table=env.get(ENV_INVOICES_TABLE) or None,
            owners_table=env.get(ENV_OWNERS_TABLE) or None,
            quarantine_queue_url=env.get(ENV_QUARANTINE_QUEUE_URL) or None,
            archive_bucket=env.get(ENV_ARCHIVE_BUCKET) or None,
            archive_prefix=env.get(ENV_ARCHIVE_PREFIX) or "archive/",
            redshift_database=env.get(ENV_REDSHIFT_DATABASE) or None,
            redshift_cluster=env.get(ENV_REDSHIFT_CLUSTER) or None,
            redshift_workgroup=env.get(ENV_REDSHIFT_WORKGROUP) or None,
            redshift_secret_arn=env.get(ENV_REDSHIFT_SECRET_ARN) or None,
            max_body_bytes=max_body,
            size_medium_from=sizes[ENV_SIZE_MEDIUM_FROM],
            size_large_from=sizes[ENV_SIZE_LARGE_FROM],
            notifications_table=env.get(ENV_NOTIFICATIONS_TABLE) or None,
            large_orders_topic_arn=env.get(ENV_LARGE_ORDERS_TOPIC_ARN) or None,
            large_order_from=sizes[ENV_LARGE_ORDER_FROM],
            drop_bucket=env.get(ENV_DROP_BUCKET) or None,
            drop_archive_bucket=env.get(ENV_DROP_ARCHIVE_BUCKET) or None,
            files_table=env.get(ENV_FILES_TABLE) or None,
            file_outcomes_topic_arn=env.get(ENV_FILE_OUTCOMES_TOPIC_ARN) or None,
        )

    def redshift_target(self) -> dict[str, str]:
        """The Data API target: ``{"cluster_id": …}`` or ``{"workgroup": …}``, exactly one."""
        if bool(self.redshift_cluster) == bool(self.redshift_workgroup):
            raise ConfigurationError(f"exactly one of {ENV_REDSHIFT_CLUSTER} and {ENV_REDSHIFT_WORKGROUP} must be set")
        return {"cluster_id": self.redshift_cluster} if self.redshift_cluster else {"workgroup": self.redshift_workgroup}  # type: ignore[dict-item]

    def require(self, attribute: str) -> str:
        """The value of a setting this function cannot run without."""
        value = getattr(self, attribute)
        if not value:
            env_name = {
                "stream_name": ENV_STREAM_NAME,
                "invoices_table": ENV_INVOICES_TABLE,
                "quarantine_queue_url": ENV_QUARANTINE_QUEUE_URL,
                "archive_bucket": ENV_ARCHIVE_BUCKET,
                "redshift_database": ENV_REDSHIFT_DATABASE,
                "notifications_table": ENV_NOTIFICATIONS_TABLE,
                "large_orders_topic_arn": ENV_LARGE_ORDERS_TOPIC_ARN,
                "drop_bucket": ENV_DROP_BUCKET,
                "drop_archive_bucket": ENV_DROP_ARCHIVE_BUCKET,
                "files_table": ENV_FILES_TABLE,
                "file_outcomes_topic_arn": ENV_FILE_OUTCOMES_TOPIC_ARN,
            }.get(attribute, attribute)
            raise ConfigurationError(f"{env_name} is not set")
        return value


def _decimal(env: Mapping[str, str], name: str, default: Decimal) -> Decimal:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise ConfigurationError(f"{name} must be a decimal number, got {raw!r}") from exc
    if not value.is_finite() or value <= 0:
        raise ConfigurationError(f"{name} must be a positive amount, got {raw!r}")
    return value
