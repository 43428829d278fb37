"""What the runtime reads from the emulator, as plain immutable values.

The emulator is the one source of truth (Terraform creates the resources there); these
classes are what :mod:`devstack.runtime.discovery` turns its API answers into, and what
the workers, the Kinesis pollers and the gateway are configured with. Each has a
``fingerprint`` so a re-discovery can tell whether something actually changed.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_REGION = "us-east-1"
INVOKE_PAYLOAD_LIMIT = 6 * 1024 * 1024  # synchronous invocation request and response (6 MB)


def arn_region(arn: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else DEFAULT_REGION


def arn_account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else "000000000000"


def arn_resource_name(arn: str) -> str:
    """``arn:aws:kinesis:r:a:stream/name`` → ``name``; ``arn:aws:sqs:r:a:name`` → ``name``."""
    resource = arn.split(":", 5)[-1]
    return resource.split("/", 1)[1] if "/" in resource else resource


def function_arn_from_uri(uri: str) -> str:
    """API Gateway's invoke-ARN form (``arn:aws:apigateway:…:lambda:path/2015-03-31/functions/<arn>/invocations``)
    → the function ARN; anything else is returned as it is."""
    if ":apigateway:" in uri and "/functions/" in uri:
        return uri.split("/functions/", 1)[1].split("/invocations", 1)[0]
    return uri


def function_name_from_arn(arn: str) -> str:
    """A Lambda function ARN (optionally qualified) or API Gateway's invoke-ARN form → name."""
    arn = function_arn_from_uri(arn)
    if ":function:" in arn:
        return arn.split(":function:", 1)[1].split(":", 1)[0]
    return arn


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    arn: str
    handler: str
    role: str = ""
    timeout: int = 3
    memory_size: int = 128
    environment: Mapping[str, str] = field(default_factory=dict)
    reserved_concurrency: int | None = None
    runtime: str = "python3.11"
    code_sha256: str = ""
    last_modified: str = ""

    @property
    def region(self) -> str:
        return arn_region(self.arn)

    def fingerprint(self) -> tuple:
        return (self.handler, self.role, self.timeout, self.memory_size, tuple(sorted(self.environment.items())),
                self.reserved_concurrency, self.runtime, self.code_sha256, self.last_modified)

    @classmethod
    def from_api(cls, config: Mapping[str, Any], reserved: int | None = None) -> FunctionSpec:
        return cls(
            name=config["FunctionName"],
            arn=config["FunctionArn"],
            handler=config.get("Handler") or "",
            role=config.get("Role") or "",
            timeout=int(config.get("Timeout") or 3),
            memory_size=int(config.get("MemorySize") or 128),
            environment=dict((config.get("Environment") or {}).get("Variables") or {}),
            reserved_concurrency=reserved,
            runtime=config.get("Runtime") or "python3.11",
            code_sha256=config.get("CodeSha256") or "",
            last_modified=str(config.get("LastModified") or ""),
        )


@dataclass(frozen=True)
class EsmSpec:
    """A Kinesis event source mapping, with Lambda's defaults filled in."""

    uuid: str
    function_arn: str
    event_source_arn: str
    enabled: bool = True
    batch_size: int = 100
    maximum_batching_window: float = 0.0
    starting_position: str = "TRIM_HORIZON"
    starting_position_timestamp: float | None = None
    report_batch_item_failures: bool = False
    bisect_on_error: bool = False
    maximum_retry_attempts: int = -1
    maximum_record_age: int = -1
    on_failure_destination: str | None = None
    parallelization_factor: int = 1
    last_modified: float | None = None

    @property
    def function_name(self) -> str:
        return function_name_from_arn(self.function_arn)

    @property
    def stream_name(self) -> str:
        return arn_resource_name(self.event_source_arn)

    @property
    def region(self) -> str:
        return arn_region(self.event_source_arn)

    @property
    def is_kinesis(self) -> bool:
        return self.event_source_arn.split(":")[2:3] == ["kinesis"] and ":stream/" in self.event_source_arn

    def fingerprint(self) -> tuple:
        data = asdict(self)
        data.pop("last_modified")
        return tuple(sorted(data.items()))

    def to_status(self) -> dict:
        return {
            "uuid": self.uuid,
            "function": self.function_name,
            "function_arn": self.function_arn,
            "stream_arn": self.event_source_arn,
            "state": "Enabled" if self.enabled else "Disabled",
            "batch_size": self.batch_size,
            "maximum_batching_window_seconds": self.maximum_batching_window,
            "starting_position": self.starting_position,
            "report_batch_item_failures": self.report_batch_item_failures,
            "bisect_batch_on_function_error": self.bisect_on_error,
            "maximum_retry_attempts": self.maximum_retry_attempts,
            "maximum_record_age_seconds": self.maximum_record_age,
            "on_failure_destination": self.on_failure_destination,
            "parallelization_factor": self.parallelization_factor,
        }

    @classmethod
    def from_api(cls, config: Mapping[str, Any]) -> EsmSpec:
        def number(key: str, default):
            value = config.get(key)
            return default if value is None else value

        timestamp = config.get("StartingPositionTimestamp")
        last_modified = config.get("LastModified")
        return cls(
            uuid=config["UUID"],
            function_arn=config.get("FunctionArn") or "",
            event_source_arn=config.get("EventSourceArn") or "",
            enabled=(config.get("State") or "Enabled") in ("Enabled", "Enabling", "Creating", "Updating"),
            batch_size=int(number("BatchSize", 100)),
            maximum_batching_window=float(number("MaximumBatchingWindowInSeconds", 0)),
            starting_position=config.get("StartingPosition") or "TRIM_HORIZON",
            starting_position_timestamp=_epoch(timestamp),
            report_batch_item_failures="ReportBatchItemFailures" in (config.get("FunctionResponseTypes") or []),
            bisect_on_error=bool(config.get("BisectBatchOnFunctionError")),
            maximum_retry_attempts=int(number("MaximumRetryAttempts", -1)),
            maximum_record_age=int(number("MaximumRecordAgeInSeconds", -1)),
            on_failure_destination=((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination"),
            parallelization_factor=int(number("ParallelizationFactor", 1)),
            last_modified=_epoch(last_modified),
        )


def _epoch(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class AuthorizerSpec:
    """An HTTP API authorizer as GetAuthorizer gives it (JWT: issuer and audiences)."""

    authorizer_id: str
    authorizer_type: str                       # "JWT" or "REQUEST" (a Lambda authorizer)
    name: str = ""
    identity_sources: tuple[str, ...] = ("$request.header.Authorization",)
    issuer: str | None = None
    audience: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouteSpec:
    route_key: str          # "GET /invoices/{invoice_no}", "ANY /{proxy+}", "$default"
    function_name: str
    function_arn: str
    payload_format_version: str = "2.0"
    timeout_ms: int = 30000
    authorization_type: str = "NONE"           # "NONE", "JWT", "CUSTOM" or "AWS_IAM"
    authorizer: AuthorizerSpec | None = None
    authorization_scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class HttpApiSpec:
    api_id: str
    name: str
    routes: tuple[RouteSpec, ...]
    stages: tuple[str, ...] = ("$default",)
    account_id: str = "123456789012"
    region: str = DEFAULT_REGION

    def to_status(self) -> dict:
        return {
            "api_id": self.api_id,
            "name": self.name,
            "stages": list(self.stages),
            "routes": [{"route_key": r.route_key, "function": r.function_name,
                        "payload_format_version": r.payload_format_version, "timeout_ms": r.timeout_ms,
                        "authorization_type": r.authorization_type,
                        "authorization_scopes": list(r.authorization_scopes),
                        "issuer": r.authorizer.issuer if r.authorizer else None}
                       for r in self.routes],
        }


@dataclass(frozen=True)
class Discovery:
    """One consistent read of the emulator."""

    functions: Mapping[str, FunctionSpec]
    mappings: Mapping[str, EsmSpec]
    apis: tuple[HttpApiSpec, ...]
    shards: Mapping[str, tuple[tuple[str, str | None, str | None, str | None], ...]] = field(default_factory=dict)
    """stream ARN → ((shard id, parent shard id, ending sequence number if closed, adjacent
    parent shard id of a merge), ...)"""
    retention_seconds: Mapping[str, int] = field(default_factory=dict)
    delivery_streams: Mapping[str, DeliveryStreamSpec] = field(default_factory=dict)
    schedules: Mapping[str, ScheduleSpec] = field(default_factory=dict)
    bucket_notifications: Mapping[str, Any] = field(default_factory=dict)  # bucket → s3_notifications.BucketNotificationSpec


@dataclass(frozen=True)
class DeliveryStreamSpec:
    """A Firehose delivery stream with a Kinesis source and a Redshift destination, as
    DescribeDeliveryStream gives it (Firehose's defaults filled in)."""

    name: str
    arn: str
    source_stream_arn: str
    role_arn: str = ""
    status: str = "ACTIVE"
    version: str = "1"
    created_at: float | None = None
    # Redshift destination: the COPY
    jdbc_url: str = ""
    table: str = ""
    columns: str = ""
    copy_options: str = ""
    retry_seconds: int = 3600
    secret_arn: str | None = None
    # S3 staging ("intermediate") and errors
    bucket: str = ""
    prefix: str = ""
    error_prefix: str = ""
    buffer_bytes: int = 5 * 1024 * 1024
    buffer_seconds: float = 300.0
    compression: str = "UNCOMPRESSED"  # AWS's default
    # transformation
    processor_arn: str | None = None
    processor_buffer_bytes: int = 1024 * 1024
    processor_buffer_seconds: float = 60.0
    processor_retries: int = 3
    # S3 backup of source records
    backup_bucket: str | None = None
    backup_prefix: str = ""

    @property
    def region(self) -> str:
        return arn_region(self.arn)

    @property
    def cluster_id(self) -> str:
        """``jdbc:redshift://<cluster>.<id>.<region>.redshift.amazonaws.com:5439/db`` → ``<cluster>``."""
        host = self.jdbc_url.split("//", 1)[-1].split("/", 1)[0].split(":", 1)[0]
        return host.split(".", 1)[0]

    @property
    def database(self) -> str:
        return self.jdbc_url.rsplit("/", 1)[-1] if self.jdbc_url.count("/") >= 3 else "dev"

    def fingerprint(self) -> tuple:
        data = asdict(self)
        data.pop("created_at")
        return tuple(sorted(data.items()))

    def to_status(self) -> dict:
        return {
            "delivery_stream": self.name, "version": self.version, "table": self.table,
            "cluster": self.cluster_id, "database": self.database, "bucket": self.bucket, "prefix": self.prefix,
            "error_prefix": self.error_prefix, "buffer_mb": round(self.buffer_bytes / 1048576, 3),
            "buffer_seconds": self.buffer_seconds, "processor": self.processor_arn,
            "processor_buffer_mb": round(self.processor_buffer_bytes / 1048576, 3),
            "processor_buffer_seconds": self.processor_buffer_seconds, "retry_seconds": self.retry_seconds,
            "backup_prefix": self.backup_prefix if self.backup_bucket else None,
        }

    @classmethod
    def from_api(cls, description: Mapping[str, Any]) -> DeliveryStreamSpec | None:
        """None for delivery streams the local runtime does not play (not Kinesis → Redshift)."""
        source = (description.get("Source") or {}).get("KinesisStreamSourceDescription") or {}
        destinations = description.get("Destinations") or []
        redshift = (destinations[0] if destinations else {}).get("RedshiftDestinationDescription")
        if not source.get("KinesisStreamARN") or redshift is None:
            return None
        copy = redshift.get("CopyCommand") or {}
        s3 = redshift.get("S3DestinationDescription") or {}
        hints = s3.get("BufferingHints") or {}
        processor: dict[str, str] = {}
        processing = redshift.get("ProcessingConfiguration") or {}
        if processing.get("Enabled"):
            for step in processing.get("Processors") or []:
                if step.get("Type") == "Lambda":
                    processor = {p["ParameterName"]: p["ParameterValue"] for p in step.get("Parameters") or []}
        backup = redshift.get("S3BackupDescription") or {}
        secrets = redshift.get("SecretsManagerConfiguration") or {}
        created = description.get("CreateTimestamp")
        return cls(
            name=description["DeliveryStreamName"],
            arn=description["DeliveryStreamARN"],
            source_stream_arn=source["KinesisStreamARN"],
            role_arn=source.get("RoleARN") or redshift.get("RoleARN") or "",
            status=description.get("DeliveryStreamStatus") or "ACTIVE",
            version=str(description.get("VersionId") or "1"),
            created_at=_epoch(created),
            jdbc_url=redshift.get("ClusterJDBCURL") or "",
            table=copy.get("DataTableName") or "",
            columns=copy.get("DataTableColumns") or "",
            copy_options=copy.get("CopyOptions") or "",
            retry_seconds=int((redshift.get("RetryOptions") or {}).get("DurationInSeconds", 3600)),
            secret_arn=secrets.get("SecretARN") if secrets.get("Enabled") else None,
            bucket=arn_resource_name(s3.get("BucketARN") or "arn:aws:s3:::"),
            prefix=s3.get("Prefix") or "",
            error_prefix=s3.get("ErrorOutputPrefix") or "",
            buffer_bytes=int(float(hints.get("SizeInMBs", 5)) * 1024 * 1024),
            buffer_seconds=float(hints.get("IntervalInSeconds", 300)),
            compression=s3.get("CompressionFormat") or "UNCOMPRESSED",
            processor_arn=(processor.get("LambdaArn") or "").removesuffix(":$LATEST") or None,
            processor_buffer_bytes=int(float(processor.get("BufferSizeInMBs", 1)) * 1024 * 1024),
            processor_buffer_seconds=float(processor.get("BufferIntervalInSeconds", 60)),
            processor_retries=int(processor.get("NumberOfRetries", 3)),
            backup_bucket=(arn_resource_name(backup["BucketARN"]) if redshift.get("S3BackupMode") == "Enabled"
                           and backup.get("BucketARN") else None),
            backup_prefix=backup.get("Prefix") or "",
        )


@dataclass(frozen=True)
class ScheduleSpec:
    """An EventBridge rule with a schedule expression, and its Lambda targets."""

    name: str
    arn: str
    expression: str
    enabled: bool = True
    targets: tuple[tuple[str, str | None], ...] = ()  # (function ARN, Input JSON or None)

    @property
    def region(self) -> str:
        return arn_region(self.arn)

    def fingerprint(self) -> tuple:
        return (self.expression, self.enabled, self.targets)
