"""Settings of every Lambda, read once per cold start from the environment.

The environment variable names below are the contract with Terraform
(``infra/terraform/lambda.tf`` sets exactly these keys per function, and
``tests/contract/test_settings_terraform.py`` proves the two agree).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Mapping

from pipeline.errors import ConfigurationError

# Set by Terraform, per function.
ENV_STREAM_NAME = "SHOPSTREAM_STREAM_NAME"
ENV_INVOICES_TABLE = "SHOPSTREAM_INVOICES_TABLE"
ENV_QUARANTINE_QUEUE_URL = "SHOPSTREAM_QUARANTINE_QUEUE_URL"
ENV_MAX_BODY_BYTES = "SHOPSTREAM_MAX_BODY_BYTES"
ENV_ARCHIVE_BUCKET = "SHOPSTREAM_ARCHIVE_BUCKET"
ENV_ARCHIVE_PREFIX = "SHOPSTREAM_ARCHIVE_PREFIX"
ENV_SIZE_MEDIUM_FROM = "SHOPSTREAM_SIZE_MEDIUM_FROM"
ENV_SIZE_LARGE_FROM = "SHOPSTREAM_SIZE_LARGE_FROM"
# Set by the Lambda service (AWS_REGION) or, locally, by the local runtime
# (AWS_ENDPOINT_URL, the standard variable boto3 itself honours).
ENV_REGION = "AWS_REGION"
ENV_ENDPOINT_URL = "AWS_ENDPOINT_URL"

# What Terraform must set for each function (keys of the ``functions`` map in
# infra/terraform/lambda.tf). Powertools' own variables come on top of these.
FUNCTION_ENV: Mapping[str, frozenset[str]] = {
    "ingest": frozenset({ENV_STREAM_NAME, ENV_MAX_BODY_BYTES}),
    "invoice-writer": frozenset({ENV_INVOICES_TABLE, ENV_QUARANTINE_QUEUE_URL}),
    "query-api": frozenset({ENV_INVOICES_TABLE}),
    "archive-writer": frozenset({ENV_ARCHIVE_BUCKET, ENV_ARCHIVE_PREFIX, ENV_QUARANTINE_QUEUE_URL}),
}
POWERTOOLS_ENV = frozenset({"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"})

# API Gateway HTTP APIs accept 10 MB; a synchronous Lambda invocation takes 6 MB
# including the event envelope, so the ingest API stops well below that.
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024
# Line amounts (absolute, in the shop's currency) from which a line is Medium / Large.
DEFAULT_SIZE_MEDIUM_FROM = Decimal("10")
DEFAULT_SIZE_LARGE_FROM = Decimal("100")


@dataclass(frozen=True, slots=True)
class Settings:
    region: str
    endpoint_url: str | None = None
    stream_name: str | None = None
    invoices_table: str | None = None
    quarantine_queue_url: str | None = None
    archive_bucket: str | None = None
    archive_prefix: str = "archive/"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    size_medium_from: Decimal = DEFAULT_SIZE_MEDIUM_FROM
    size_large_from: Decimal = DEFAULT_SIZE_LARGE_FROM

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
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
                                       (ENV_SIZE_LARGE_FROM, DEFAULT_SIZE_LARGE_FROM))}
        return cls(
            region=region,
            endpoint_url=env.get(ENV_ENDPOINT_URL) or None,
            stream_name=env.get(ENV_STREAM_NAME) or None,
            invoices_table=env.get(ENV_INVOICES_TABLE) or None,
            quarantine_queue_url=env.get(ENV_QUARANTINE_QUEUE_URL) or None,
            archive_bucket=env.get(ENV_ARCHIVE_BUCKET) or None,
            archive_prefix=env.get(ENV_ARCHIVE_PREFIX) or "archive/",
            max_body_bytes=max_body,
            size_medium_from=sizes[ENV_SIZE_MEDIUM_FROM],
            size_large_from=sizes[ENV_SIZE_LARGE_FROM],
        )

    def require(self, attribute: str) -> str:
        """The value of a setting this function cannot run without."""
        value = getattr(self, attribute)
        if not value:
            env_name = {
                "stream_name": ENV_STREAM_NAME,
                "invoices_table": ENV_INVOICES_TABLE,
                "quarantine_queue_url": ENV_QUARANTINE_QUEUE_URL,
                "archive_bucket": ENV_ARCHIVE_BUCKET,
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
