"""Firehose delivery streams with a Kinesis source and a Redshift destination, played locally.

moto stores delivery streams but never reads their Kinesis source, never calls the
transformation and drops Redshift-bound data. For each such delivery stream the runtime
does Firehose's job, on the same shard reader as the event source mappings
(:mod:`.shards`), with the delivery stream's own checkpoints:

Reading
    Every shard from LATEST as of the delivery stream's creation (where AWS Firehose
    starts a Kinesis source), anchored so a restarted runtime skips nothing. KPL
    aggregates are de-aggregated (as Firehose does for Kinesis sources): one Firehose
    record per user record, with ``kinesisRecordMetadata`` (shard, partition key,
    arrival, sequence and sub-sequence numbers). A record that is not a valid aggregate
    passes as one record, as it came.

Transformation
    Records are handed to the processor Lambda through the runtime's workers in the
    real event shape (``invocationId``, ``deliveryStreamArn``, ``sourceKinesisStreamArn``,
    ``region``, ``records`` with ``recordId``, ``approximateArrivalTimestamp`` in ms,
    base64 ``data``) in calls of at most the processor's buffer size (BufferSizeInMBs,
    default 1 MB of source data), or sooner when its BufferIntervalInSeconds has passed.
    The response must return every recordId once with ``Ok`` (and base64 data),
    ``Dropped`` or ``ProcessingFailed``; a failed or malformed invocation is retried
    NumberOfRetries times (default 3), after which all its records are processing
    failures. A throttled invocation is retried without counting.

Delivery, when the S3 buffering hints are met (SizeInMBs of transformed data, or
IntervalInSeconds since the oldest buffered record)
    1. processing failures go to ``<error prefix>processing-failed/YYYY/MM/DD/HH/…``, one
       JSON line each with Firehose's fields (``attemptsMade``, ``arrivalTimestamp``,
       ``errorCode``, ``errorMessage``, ``attemptEndingTimestamp``, ``rawData``,
       ``lambdaArn``);
    2. with S3 backup enabled, the source records (before transformation) go to the
       backup prefix;
    3. the transformed rows, concatenated, go to ``<prefix>YYYY/MM/DD/HH/<name>-<version>-
       <time>-<uuid>.gz`` (GZIP at level 1), and a manifest listing it to
       ``<prefix>manifests/…``;
    4. ``COPY <table> (<columns>) FROM 's3://<bucket>/<manifest>' CREDENTIALS
       'aws_iam_role=<role>' MANIFEST <CopyOptions>`` runs through the Redshift Data API
       (which the emulator answers from the local warehouse), with the admin secret of
       the destination's Secrets Manager configuration; a failed COPY is retried with
       backoff for the destination's retry duration, then its manifest is written to
       ``<error prefix>manifests/…`` and the batch is skipped, as Firehose does;
    5. the checkpoint moves past the delivered records.
    Nothing is acknowledged before it is in the warehouse, in the error prefix or (for
    ``Dropped``) deliberately discarded by the transformation: a runtime killed midway
    delivers the batch again, and the warehouse's merge removes the duplicates.
"""
from __future__ import annotations

import base64
import itertools
import json
import logging
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from devstack.runtime.checkpoints import CheckpointStore
from devstack.runtime.esm import FunctionInvoker
from devstack.runtime.model import INVOKE_PAYLOAD_LIMIT, DeliveryStreamSpec
from devstack.runtime.shards import (
    FINISHED,
    GET_RECORDS_LIMIT,
    IDLE,
    INVOKED,
    STOPPED,
    WAITING,
    PollerSettings,
    ShardReader,
    ShardTail,
    StartingPosition,
    Stopped,
    StreamConsumer,
)
from devstack.runtime.workers import InvokeResult, service_error

log = logging.getLogger("devstack.runtime.firehose")

KIND = "firehose"
OK, DROPPED, PROCESSING_FAILED = "Ok", "Dropped", "ProcessingFailed"
MAX_BUFFERED_RECORDS = 50_000  # Kinesis records held by one shard before a delivery is forced
_THROTTLED = ("TooManyRequestsException", "ServiceException")
COPY_TIMEOUT = 600.0  # seconds one COPY may run before the delivery counts it as failed


class ObjectStore(Protocol):
    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None: ...


class Warehouse(Protocol):
    def copy(self, spec: DeliveryStreamSpec, sql: str) -> int: ...


@dataclass
class FirehoseShardStats:
    kinesis_records_read: int = 0
    records_read: int = 0
    records_ok: int = 0
    records_dropped: int = 0
    records_processing_failed: int = 0
    transform_invocations: int = 0
    transform_failures: int = 0
    deliveries: int = 0
    rows_loaded: int = 0
    bytes_delivered: int = 0
    copy_failures: int = 0
    batches_skipped: int = 0
    last_delivery_at: float | None = None

    def to_status(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class _SourceRecord:
    record_id: str
    data: bytes
    arrival_ms: int
    metadata: dict[str, Any]


@dataclass
class _Pending:
    """What one shard holds between two deliveries."""

    prepared: int = 0                                          # stream records de-aggregated
    source: list[_SourceRecord] = field(default_factory=list)  # not yet transformed
    source_bytes: int = 0
    source_since: float | None = None                          # monotonic: oldest untransformed record
    output: list[bytes] = field(default_factory=list)
    output_bytes: int = 0
    failed: list[dict] = field(default_factory=list)
    backup: list[bytes] = field(default_factory=list)


def _hour_path(moment: datetime) -> str:
    return moment.strftime("%Y/%m/%d/%H")


def gzip_bytes(data: bytes) -> bytes:
    """GZIP at level 1 (Python's default 9 costs ~8× the time for ~10% less)."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


class FirehoseShardProcessor:
    """One delivery stream on one shard (no threads inside)."""

    def __init__(self, spec: DeliveryStreamSpec, shard_id: str, *, reader: ShardReader, store: CheckpointStore,
                 invoker: FunctionInvoker, objects: ObjectStore, warehouse: Warehouse,
                 settings: PollerSettings = PollerSettings(), parent_shard_id: str | None = None,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 stop_event: threading.Event | None = None) -> None:
        self.spec = spec
        self.shard_id = shard_id
        self.invoker = invoker
        self.objects = objects
        self.warehouse = warehouse
        self.settings = settings
        self.clock = clock
        self.monotonic = monotonic
        self.stop_event = stop_event or threading.Event()
        self.tail = ShardTail(f"{KIND}:{spec.name}", shard_id, reader=reader, store=store,
                              start=StartingPosition("LATEST", created_at=spec.created_at),
                              parent_shard_id=parent_shard_id, clock=clock, monotonic=monotonic,
                              context=f"delivery_stream={spec.name} shard={shard_id}")
        self.stats = FirehoseShardStats()
        self.pending = _Pending()

    def status(self) -> dict:
        return {**self.tail.stats.to_status(), **self.stats.to_status()}

    def _sleep(self, seconds: float) -> None:
        if seconds > 0 and self.stop_event.wait(seconds):
            raise Stopped()
        if self.stop_event.is_set():
            raise Stopped()

    # -- when things are due ---------------------------------------------------------------
    def _delivery_due(self) -> bool:
        if len(self.tail.buffer) >= MAX_BUFFERED_RECORDS or self.tail.closed:
            return True
        if self.pending.output_bytes >= self.spec.buffer_bytes:
            return True
        return self.tail.window_age() >= self.spec.buffer_seconds

    def _transform_due(self) -> bool:
        p = self.pending
        if not p.source:
            return False
        if p.source_bytes >= self.spec.processor_buffer_bytes:
            return True
        return p.source_since is not None and self.monotonic() - p.source_since >= self.spec.processor_buffer_seconds

    def wait_hint(self) -> float:
        waits = [self.spec.buffer_seconds - self.tail.window_age()]
        if self.pending.source_since is not None:
            waits.append(self.spec.processor_buffer_seconds - (self.monotonic() - self.pending.source_since))
        return max(0.0, min(waits))

    # -- one step --------------------------------------------------------------------------
    def step(self) -> str:
        tail = self.tail
        if tail.stats.finished:
            return FINISHED
        tail.read(min(len(tail.buffer) + GET_RECORDS_LIMIT, MAX_BUFFERED_RECORDS))
        if not tail.buffer:
            if tail.at_end():
                tail.finish()
                return FINISHED
            return IDLE
        try:
            self._prepare()
            if self._transform_due():
                self._transform_pending()
            if not self._delivery_due():
                return WAITING
            self._deliver()
        except Stopped:
            self._abandon()
            return STOPPED
        except Exception:
            self._abandon()  # never skip records: read them again from the checkpoint
            raise
        return INVOKED

    def _abandon(self) -> None:
        self.pending = _Pending()
        self.tail.abandon()

    # -- de-aggregation --------------------------------------------------------------------
    def _prepare(self) -> None:
        from pipeline.codec import deaggregate
        from pipeline.errors import CorruptRecord

        p = self.pending
        fresh = list(itertools.islice(self.tail.buffer, p.prepared, None))
        for record in fresh:
            self.stats.kinesis_records_read += 1
            try:
                users = [(u.partition_key or record.partition_key, u.data) for u in deaggregate(record.data)]
            except CorruptRecord:
                users = [(record.partition_key, record.data)]  # as it came: the transformation will judge
            arrival_ms = int(round(record.arrival * 1000))
            for sub, (partition_key, data) in enumerate(users):
                p.source.append(_SourceRecord(
                    record_id=f"{record.sequence_number}:{sub}", data=data, arrival_ms=arrival_ms,
                    metadata={"shardId": self.shard_id, "partitionKey": partition_key,
                              "approximateArrivalTimestamp": arrival_ms, "sequenceNumber": record.sequence_number,
                              "subsequenceNumber": sub}))
                p.source_bytes += len(data)
                if self.spec.backup_bucket:
                    p.backup.append(data)
                self.stats.records_read += 1
            if p.source_since is None and users:
                p.source_since = self.monotonic()
        p.prepared += len(fresh)

    # -- transformation --------------------------------------------------------------------
    def _transform_pending(self) -> None:
        p = self.pending
        if not self.spec.processor_arn:  # no transformation: records go as they are
            for record in p.source:
                p.output.append(record.data)
                p.output_bytes += len(record.data)
            self.stats.records_ok += len(p.source)
        else:
            start = 0
            while start < len(p.source):
                size, end = 0, start
                while end < len(p.source) and (end == start or size + len(p.source[end].data) <= self.spec.processor_buffer_bytes):
                    size += len(p.source[end].data)
                    end += 1
                self._transform_chunk(p.source[start:end])
                start = end
        p.source, p.source_bytes, p.source_since = [], 0, None

    def _event(self, records: list[_SourceRecord]) -> bytes:
        return json.dumps({
            "invocationId": str(uuid.uuid4()),
            "deliveryStreamArn": self.spec.arn,
            "sourceKinesisStreamArn": self.spec.source_stream_arn,
            "region": self.spec.region,
            "records": [{"recordId": r.record_id, "approximateArrivalTimestamp": r.arrival_ms,
                         "data": base64.b64encode(r.data).decode("ascii"), "kinesisRecordMetadata": r.metadata}
                        for r in records],
        }, separators=(",", ":")).encode()

    def _transform_chunk(self, records: list[_SourceRecord]) -> None:
        payload = self._event(records)
        if len(payload) > INVOKE_PAYLOAD_LIMIT and len(records) > 1:  # one huge record: split the call
            half = len(records) // 2
            self._transform_chunk(records[:half])
            self._transform_chunk(records[half:])
            return
        attempts, throttles, error = 0, 0, ("", "")
        while True:
            self.stats.transform_invocations += 1
            result = self._invoke(payload)
            if result.service_error in _THROTTLED:
                # not run at all: retried with a growing wait, without consuming a retry
                throttles += 1
                self.tail.note_not_run("transformation", result, throttles)
                self._sleep(self.settings.retry_delay(throttles))
                continue
            if throttles:
                self.tail.stats.last_error, throttles = None, 0
            attempts += 1
            answers, error = self._answers(result, records)
            if answers is not None:
                break
            self.stats.transform_failures += 1
            log.warning("transformation failed (attempt %d of %d): %s: %s %s", attempts,
                        self.spec.processor_retries + 1, error[0], error[1], self.tail.context)
            if attempts > self.spec.processor_retries:
                self._fail(records, attempts, *error)
                return
            self._sleep(self.settings.retry_delay(attempts))
        p = self.pending
        for record in records:
            outcome, data = answers[record.record_id]
            if outcome == OK:
                p.output.append(data)
                p.output_bytes += len(data)
                self.stats.records_ok += 1
            elif outcome == DROPPED:
                self.stats.records_dropped += 1
            else:
                self._fail([record], attempts, "Lambda.ProcessingFailed",
                           "The Lambda function returned ProcessingFailed for this record")

    def _invoke(self, payload: bytes) -> InvokeResult:
        try:
            return self.invoker.invoke(self.spec.processor_arn, payload)
        except Exception as exc:  # the invoker itself failed
            return service_error("ServiceException", str(exc))

    @staticmethod
    def _answers(result: InvokeResult, records: list[_SourceRecord]) -> tuple[dict | None, tuple[str, str]]:
        """The transformation's per-record answers, or None and Firehose's error code and message."""
        if result.service_error is not None:
            return None, (f"Lambda.{result.service_error}", result.error_message or "")
        if result.function_error is not None:
            return None, ("Lambda.FunctionError", f"{result.error_type}: {result.error_message}")
        try:
            body = json.loads(result.payload)
            returned = body["records"]
            assert isinstance(returned, list)
        except (ValueError, KeyError, TypeError, AssertionError):
            return None, ("Lambda.InvalidReturnedData", "the response is not {\"records\": [...]}")
        expected = {r.record_id for r in records}
        answers: dict[str, tuple[str, bytes]] = {}
        for item in returned:
            record_id = item.get("recordId") if isinstance(item, dict) else None
            if not isinstance(record_id, str) or record_id not in expected:
                return None, ("Lambda.InvalidRecordId", f"recordId {record_id!r} was not in the request")
            if record_id in answers:
                return None, ("Lambda.DuplicatedRecordId", f"recordId {record_id!r} returned twice")
            outcome = item.get("result")
            if outcome not in (OK, DROPPED, PROCESSING_FAILED):
                return None, ("Lambda.InvalidRecordResult", f"result {outcome!r} of {record_id!r}")
            data = b""
            if outcome == OK:
                try:
                    data = base64.b64decode(item.get("data") or "", validate=True)
                except (ValueError, TypeError):
                    return None, ("Lambda.InvalidReturnedData", f"data of {record_id!r} is not base64")
            answers[record_id] = (outcome, data)
        if len(answers) != len(expected):
            return None, ("Lambda.MissingRecordId", f"{len(expected) - len(answers)} recordIds not returned")
        return answers, ("", "")

    def _fail(self, records: list[_SourceRecord], attempts: int, code: str, message: str) -> None:
        now_ms = int(self.clock() * 1000)
        for record in records:
            self.pending.failed.append({
                "attemptsMade": attempts, "arrivalTimestamp": record.arrival_ms, "errorCode": code,
                "errorMessage": message, "attemptEndingTimestamp": now_ms,
                "rawData": base64.b64encode(record.data).decode("ascii"), "lambdaArn": self.spec.processor_arn,
            })
        self.stats.records_processing_failed += len(records)

    # -- delivery --------------------------------------------------------------------------
    def _key(self, prefix: str, moment: datetime, suffix: str = "") -> str:
        stamp = moment.strftime("%Y-%m-%d-%H-%M-%S")
        return f"{prefix}{_hour_path(moment)}/{self.spec.name}-{self.spec.version}-{stamp}-{uuid.uuid4()}{suffix}"

    def _deliver(self) -> None:
        spec, p = self.spec, self.pending
        self.tail.stats.in_flight = True
        try:
            self._transform_pending()
            moment = datetime.fromtimestamp(self.clock(), tz=UTC)
            gz = spec.compression == "GZIP"
            if p.failed:
                body = "".join(json.dumps(f) + "\n" for f in p.failed).encode()
                self._put(spec.bucket, self._key(f"{spec.error_prefix}processing-failed/", moment), body,
                          "application/x-ndjson")
            if spec.backup_bucket and p.backup:
                data = b"".join(p.backup)
                self._put(spec.backup_bucket, self._key(spec.backup_prefix, moment, ".gz" if gz else ""),
                          gzip_bytes(data) if gz else data, "application/octet-stream")
            if p.output:
                self._load(moment, b"".join(p.output), gz)
            self.stats.deliveries += 1
            self.stats.last_delivery_at = self.clock()
            delivered = self.tail.take(p.prepared)
            if delivered:
                self.tail.commit(delivered[-1].sequence_number)
            self.pending = _Pending()
        finally:
            self.tail.stats.in_flight = False

    def _load(self, moment: datetime, data: bytes, gz: bool) -> None:
        spec = self.spec
        key = self._key(spec.prefix, moment, ".gz" if gz else "")
        self._put(spec.bucket, key, gzip_bytes(data) if gz else data, "application/octet-stream")
        manifest = json.dumps({"entries": [{"url": f"s3://{spec.bucket}/{key}", "mandatory": True}]}).encode()
        manifest_key = self._key(f"{spec.prefix}manifests/", moment)
        self._put(spec.bucket, manifest_key, manifest, "application/json")
        column_list = f" ({spec.columns})" if spec.columns.strip() else ""  # DataTableColumns is optional
        sql = (f"COPY {spec.table}{column_list} FROM 's3://{spec.bucket}/{manifest_key}' "
               f"CREDENTIALS 'aws_iam_role={spec.role_arn}' MANIFEST {spec.copy_options};")
        deadline = self.monotonic() + spec.retry_seconds
        failures = 0
        while True:
            try:
                rows = self.warehouse.copy(spec, sql)
                break
            except Exception as exc:  # Firehose retries any COPY failure for the retry duration
                failures += 1
                self.stats.copy_failures += 1
                self.tail.stats.last_error = f"COPY: {exc}"
                if self.monotonic() >= deadline:
                    log.error("COPY still failing after %ds; skipping the batch, manifest under %smanifests/: %s %s",
                              spec.retry_seconds, spec.error_prefix, exc, self.tail.context)
                    self._put(spec.bucket, self._key(f"{spec.error_prefix}manifests/", moment), manifest,
                              "application/json")
                    self.stats.batches_skipped += 1
                    return
                (log.warning if failures in (1, 2) or failures % 10 == 0 else log.debug)(
                    "COPY failed (%s), retrying (attempt %d) %s", exc, failures, self.tail.context)
                self._sleep(min(self.settings.error_delay(failures), max(0.0, deadline - self.monotonic())))
        self.tail.stats.last_error = None
        self.stats.rows_loaded += rows
        self.stats.bytes_delivered += len(data)

    def _put(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        failures = 0
        while True:
            try:
                self.objects.put(bucket, key, body, content_type)
                return
            except Exception as exc:  # S3 unavailable: keep the records until it is back
                failures += 1
                self.tail.stats.last_error = f"PutObject s3://{bucket}/{key}: {exc}"
                log.warning("could not write s3://%s/%s (%s); retrying %s", bucket, key, exc, self.tail.context)
                self._sleep(self.settings.error_delay(failures))


class FirehoseRunner(StreamConsumer):
    """All shard pollers of one delivery stream."""

    kind = KIND

    def __init__(self, spec: DeliveryStreamSpec, *, reader: ShardReader, store: CheckpointStore,
                 invoker: FunctionInvoker, objects: ObjectStore, warehouse: Warehouse,
                 settings: PollerSettings = PollerSettings()) -> None:
        super().__init__(f"{KIND}:{spec.name}", spec.source_stream_arn, store=store, settings=settings)
        self.spec = spec
        self.reader, self.invoker, self.objects, self.warehouse = reader, invoker, objects, warehouse

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def function_arn(self) -> str:
        return self.spec.processor_arn or ""

    def make_processor(self, shard_id: str, parent_shard_id: str | None) -> FirehoseShardProcessor:
        return FirehoseShardProcessor(self.spec, shard_id, reader=self.reader, store=self.store, invoker=self.invoker,
                                      objects=self.objects, warehouse=self.warehouse, settings=self.settings,
                                      parent_shard_id=parent_shard_id)

    def update(self, spec: DeliveryStreamSpec) -> None:
        """A changed configuration applies from each shard's next delivery."""
        self.spec = spec
        for processor in self.processors():
            processor.spec = spec  # type: ignore[attr-defined]

    def describe(self) -> dict:
        return self.spec.to_status()


# -- boto3 adapters ------------------------------------------------------------------------
class BotoObjectStore:
    def __init__(self, client_factory: Callable[..., Any]) -> None:
        self.client_factory = client_factory

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.client_factory("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


class DataApiWarehouse:
    """The COPY through the Redshift Data API, as the delivery stream's credentials allow."""

    def __init__(self, client_factory: Callable[..., Any]) -> None:
        self.client_factory = client_factory

    def copy(self, spec: DeliveryStreamSpec, sql: str) -> int:
        from warehouse.data_api import DataApiExecutor

        executor = DataApiExecutor(self.client_factory("redshift-data", spec.region), database=spec.database,
                                   cluster_id=spec.cluster_id, secret_arn=spec.secret_arn, timeout=COPY_TIMEOUT)
        return executor.execute(sql).rowcount
