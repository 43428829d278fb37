"""Lambda event source mappings on Kinesis streams, with AWS Lambda's semantics.

For every enabled mapping on a Kinesis stream the runtime runs one poller thread per
shard (:mod:`.shards`: a :class:`~devstack.runtime.shards.ShardTail` reads the shard,
with the mapping's own checkpoints), the way Lambda's ParallelizationFactor 1 works (a
larger factor is accepted, logged, and treated as 1). StartingPosition is honoured as
described in :mod:`.shards` (``LATEST`` anchored at the mapping's LastModified). This
module is what the mapping does with the records it reads:

Batching
    Up to BatchSize records per invocation. With MaximumBatchingWindowInSeconds > 0 the
    poller keeps reading until the batch is full or the window (started by the first
    buffered record) has elapsed; with 0 it invokes as soon as a read returns records.
    The event never exceeds the 6 MB invocation payload: the batch is cut short and the
    rest goes in the next batch. One batch per shard is in flight at a time; a shard's
    records are processed in order. The event is Lambda's, byte for byte in shape:
    ``{"Records": [{"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey",
    "sequenceNumber", "data" (base64), "approximateArrivalTimestamp" (epoch seconds,
    always present: aws-kinesis-agg's deaggregator drops records without it)},
    "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": "<shard>:<seq>",
    "eventName": "aws:kinesis:record", "invokeIdentityArn": <function role>,
    "awsRegion", "eventSourceARN"}]}``.

Outcome of an invocation
    - Success → checkpoint after the batch's last record.
    - With ``ReportBatchItemFailures`` in FunctionResponseTypes (ignored otherwise), a
      response is a complete success when it is null, has no/null/empty
      ``batchItemFailures``. A list of ``{"itemIdentifier": <sequenceNumber>}`` is a
      partial failure: checkpoint just before the LOWEST failed sequence number and
      retry from there (with BisectBatchOnFunctionError too, AWS "bisects at the
      returned sequence number and retries only the remaining records": the same
      thing). An empty/null/unknown identifier, a non-list ``batchItemFailures`` or a
      response that is not an object is malformed: the whole batch failed.
    - Function error (exception, timeout, crash, malformed partial response) → the
      batch failed. With BisectBatchOnFunctionError a failed batch of 2+ records is
      split in two halves processed left then right; bisecting consumes no retry; a
      single record is retried.
    - Retry counting: ``failures`` counts the failed invocations of a batch starting at
      the same record. A partial failure that made progress starts a new count at 1
      for the remaining records; one at the batch's first record adds 1; halves of a
      bisected batch inherit the count. When ``failures > MaximumRetryAttempts``
      (-1 = unlimited) the batch goes to the on-failure destination with condition
      ``RetryAttemptsExhausted`` and ``approximateInvokeCount = failures`` (so with 2
      retries: 3 invocations). Records that fail after a partial success in the same
      batch go with it, as on AWS (a handler should quarantine poison records itself).
    - Before each invocation (retries included), records older than
      MaximumRecordAgeInSeconds (-1 = the stream's retention) are removed from the
      front of the batch and sent with condition ``RecordAgeExceeded``.
    - The on-failure record is AWS's (``requestContext``, ``responseContext``,
      ``version``, ``timestamp``, ``KinesisBatchInfo`` with shard, first/last sequence
      numbers and arrival times, batch size and stream ARN), sent with SQS SendMessage
      (or SNS Publish). Once sent, the checkpoint moves past those records. Without a
      destination they are logged and skipped, as AWS discards them.
    - Throttling (reserved concurrency 0, pool busy) or an unknown function is retried
      without consuming retries, until the records expire.
    - Retries wait ``retry_base_delay * 2**(failures-1)`` capped at ``retry_max_delay``
      (short by default so tests stay quick).

Checkpoints and failures of the emulator
    The checkpoint is written after every step (success, partial success, destination),
    so a restarted runtime resumes exactly where it stopped: at most the batch in flight
    is processed again. GetShardIterator/GetRecords errors (throttling, the emulator
    restarting) are logged and retried with backoff; they never stop the poller.
"""
from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from devstack.runtime.checkpoints import CheckpointStore
from devstack.runtime.model import INVOKE_PAYLOAD_LIMIT, EsmSpec, arn_account, arn_resource_name
from devstack.runtime.shards import (
    FINISHED,
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
    StreamRecord,
)
from devstack.runtime.workers import InvokeResult, iso_millis, service_error

log = logging.getLogger("devstack.runtime.esm")

KIND = "event-source-mapping"
_ENVELOPE = len('{"Records":[]}')


class DestinationSender(Protocol):
    def send(self, destination_arn: str, message: dict) -> None: ...


class FunctionInvoker(Protocol):
    def invoke(self, function: str, payload: bytes, *, request_id: str | None = None) -> InvokeResult: ...


class UnsupportedDestination(ValueError):
    pass


@dataclass
class EsmShardStats:
    """The mapping's own counters for one shard (beside the reading ones of ShardStats)."""

    records_processed: int = 0
    batches_invoked: int = 0
    batch_failures: int = 0
    retries: int = 0
    bisections: int = 0
    records_sent_to_destination: int = 0
    destination_messages: int = 0
    records_discarded: int = 0
    last_batch_at: float | None = None

    def to_status(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class _Segment:
    records: list[StreamRecord]
    failures: int = 0
    last_result: InvokeResult | None = None
    throttles: int = 0  # consecutive invocations not run (they consume no retry)


@dataclass
class _Outcome:
    kind: str  # success | partial | failure | throttled
    index: int = 0
    reason: str = ""


def starting_position(esm: EsmSpec) -> StartingPosition:
    return StartingPosition(esm.starting_position or "TRIM_HORIZON", esm.starting_position_timestamp, esm.last_modified)


class EsmShardProcessor:
    """One mapping on one shard: batches, invocations, retries, destinations (no threads inside)."""

    def __init__(self, esm: EsmSpec, shard_id: str, *, reader: ShardReader, invoker: FunctionInvoker,
                 sender: DestinationSender | None, store: CheckpointStore, role_arn: Callable[[], str] | str = "",
                 settings: PollerSettings = PollerSettings(), parent_shard_id: str | None = None,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 stop_event: threading.Event | None = None) -> None:
        self.esm = esm
        self.shard_id = shard_id
        self.invoker = invoker
        self.sender = sender
        self._role = role_arn
        self.settings = settings
        self.clock = clock
        self.stop_event = stop_event or threading.Event()
        self.tail = ShardTail(esm.uuid, shard_id, reader=reader, store=store, start=starting_position(esm),
                              parent_shard_id=parent_shard_id, clock=clock, monotonic=monotonic,
                              context=f"esm={esm.uuid} function={esm.function_name} shard={shard_id}")
        self.stats = EsmShardStats()

    # -- helpers ---------------------------------------------------------------------------
    @property
    def role_arn(self) -> str:
        return self._role() if callable(self._role) else self._role

    def _ctx(self) -> str:
        return self.tail.context

    def _sleep(self, seconds: float) -> None:
        if seconds > 0 and self.stop_event.wait(seconds):
            raise Stopped()
        if self.stop_event.is_set():
            raise Stopped()

    def status(self) -> dict:
        return {**self.tail.stats.to_status(), **self.stats.to_status()}

    def window_remaining(self) -> float:
        if self.tail.window_started is None:
            return 0.0
        return max(0.0, self.esm.maximum_batching_window - self.tail.window_age())

    wait_hint = window_remaining

    # -- one step --------------------------------------------------------------------------
    def step(self) -> str:
        """Read once and, when a batch is due, process it to the end (retries included)."""
        tail = self.tail
        if tail.stats.finished:
            return FINISHED
        esm = self.esm
        tail.read(esm.batch_size)
        if not tail.buffer:
            if tail.at_end():
                tail.finish()
                return FINISHED
            return IDLE
        if (esm.maximum_batching_window > 0 and len(tail.buffer) < esm.batch_size and not tail.closed
                and self.window_remaining() > 0):
            return WAITING
        batch = self._take_batch(esm)
        try:
            self._process(batch)
        except Stopped:
            tail.abandon()
            return STOPPED
        except Exception:
            tail.abandon()  # never skip records: re-read from the checkpoint
            raise
        return INVOKED

    # -- batches ---------------------------------------------------------------------------
    def _encode(self, record: StreamRecord) -> str:
        if record.encoded is None:
            esm = self.esm
            record.encoded = json.dumps({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": record.partition_key,
                    "sequenceNumber": record.sequence_number,
                    "data": base64.b64encode(record.data).decode("ascii"),
                    "approximateArrivalTimestamp": record.arrival,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{self.shard_id}:{record.sequence_number}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": self.role_arn,
                "awsRegion": esm.region,
                "eventSourceARN": esm.event_source_arn,
            }, separators=(",", ":"))
        return record.encoded

    def _take_batch(self, esm: EsmSpec) -> list[StreamRecord]:
        buffer = self.tail.buffer
        count = 0
        size = _ENVELOPE
        for record in buffer:
            if count >= esm.batch_size:
                break
            extra = len(self._encode(record)) + (1 if count else 0)
            if count and size + extra > INVOKE_PAYLOAD_LIMIT:
                log.info("batch cut at %d records to stay under the 6 MB payload limit %s", count, self._ctx())
                break
            count += 1
            size += extra
        return self.tail.take(count)

    def event_payload(self, records: Iterable[StreamRecord]) -> bytes:
        return ('{"Records":[' + ",".join(self._encode(r) for r in records) + "]}").encode()

    def _process(self, records: list[StreamRecord]) -> None:
        self.tail.stats.in_flight = True
        try:
            stack = [_Segment(records)]
            while stack:
                if self.stop_event.is_set():
                    raise Stopped()
                segment = self._drop_expired(stack.pop())
                if segment is None:
                    continue
                result = self._invoke(segment.records)
                outcome = self._classify(result, segment.records)
                if outcome.kind == "success":
                    self._commit(segment.records, processed=True)
                    continue
                if outcome.kind == "throttled":
                    throttles = segment.throttles + 1
                    self.tail.note_not_run("invocation", result, throttles)
                    self._sleep(self.settings.retry_delay(throttles))
                    stack.append(_Segment(segment.records, segment.failures, segment.last_result, throttles))
                    continue
                if segment.throttles:
                    self.tail.stats.last_error = None
                self.stats.batch_failures += 1
                if outcome.kind == "partial":
                    done, rest = segment.records[:outcome.index], segment.records[outcome.index:]
                    if done:
                        self._commit(done, processed=True)
                    failures = segment.failures + 1 if not done else 1
                    log.warning("partial batch failure: %d ok, first failed sequence %s (failure %d) %s",
                                len(done), rest[0].sequence_number, failures, self._ctx())
                    self._retry_or_give_up(_Segment(rest, failures, result), stack)
                    continue
                log.warning("batch of %d failed: %s %s", len(segment.records), outcome.reason, self._ctx())
                if self.esm.bisect_on_error and len(segment.records) > 1:
                    mid = len(segment.records) // 2
                    self.stats.bisections += 1
                    log.info("bisecting into %d + %d records %s", mid, len(segment.records) - mid, self._ctx())
                    stack.append(_Segment(segment.records[mid:], segment.failures, result))
                    stack.append(_Segment(segment.records[:mid], segment.failures, result))
                    continue
                self._retry_or_give_up(_Segment(segment.records, segment.failures + 1, result), stack)
        finally:
            self.tail.stats.in_flight = False

    def _retry_or_give_up(self, segment: _Segment, stack: list[_Segment]) -> None:
        limit = self.esm.maximum_retry_attempts
        if limit is not None and limit >= 0 and segment.failures > limit:
            self._give_up(segment.records, "RetryAttemptsExhausted", segment.failures, segment.last_result)
            return
        self.stats.retries += 1
        self._sleep(self.settings.retry_delay(segment.failures))
        stack.append(segment)

    def _drop_expired(self, segment: _Segment) -> _Segment | None:
        max_age = self.esm.maximum_record_age
        if max_age is None or max_age < 0:
            max_age = self.settings.retention_seconds
        now = self.clock()
        expired = 0
        for record in segment.records:
            if now - record.arrival > max_age:
                expired += 1
            else:
                break
        if not expired:
            return segment
        self._give_up(segment.records[:expired], "RecordAgeExceeded", segment.failures, segment.last_result)
        rest = segment.records[expired:]
        return _Segment(rest, segment.failures, segment.last_result) if rest else None

    def _invoke(self, records: list[StreamRecord]) -> InvokeResult:
        payload = self.event_payload(records)
        self.stats.batches_invoked += 1
        self.stats.last_batch_at = self.clock()
        try:
            result = self.invoker.invoke(self.esm.function_arn, payload)
        except Exception as exc:  # the invoker itself failed (e.g. could not start a process)
            log.error("could not invoke: %s %s", exc, self._ctx())
            result = service_error("ServiceException", str(exc))
        log.info("batch invoked records=%d first=%s last=%s ok=%s%s %s", len(records),
                 records[0].sequence_number, records[-1].sequence_number, result.ok,
                 "" if result.ok else f" error={result.error_type or result.service_error}", self._ctx())
        return result

    def _classify(self, result: InvokeResult, records: list[StreamRecord]) -> _Outcome:
        if result.service_error is not None:
            if result.service_error in ("TooManyRequestsException", "ResourceNotFoundException", "ServiceException"):
                return _Outcome("throttled")
            return _Outcome("failure", reason=f"{result.service_error}: {result.error_message}")
        if result.function_error is not None:
            return _Outcome("failure", reason=f"{result.error_type}: {result.error_message}")
        if not self.esm.report_batch_item_failures:
            return _Outcome("success")
        try:
            response = json.loads(result.payload) if result.payload else None
        except ValueError:
            return _Outcome("failure", reason="malformed response (not JSON)")
        if response is None:
            return _Outcome("success")
        if not isinstance(response, dict):
            return _Outcome("failure", reason="malformed response (not an object)")
        failures = response.get("batchItemFailures")
        if failures is None or failures == []:
            return _Outcome("success")
        if not isinstance(failures, list):
            return _Outcome("failure", reason="malformed batchItemFailures (not a list)")
        positions = {r.sequence_number: i for i, r in enumerate(records)}
        lowest = None
        for item in failures:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not isinstance(identifier, str) or identifier not in positions:
                return _Outcome("failure", reason=f"malformed batchItemFailures item {item!r}")
            index = positions[identifier]
            lowest = index if lowest is None else min(lowest, index)
        return _Outcome("partial", index=lowest)

    # -- checkpoints and destinations ------------------------------------------------------
    def _commit(self, records: list[StreamRecord], *, processed: bool) -> None:
        self.tail.commit(records[-1].sequence_number)
        if processed:
            self.stats.records_processed += len(records)
        for record in records:
            record.encoded = None

    def _give_up(self, records: list[StreamRecord], condition: str, invoke_count: int,
                 last_result: InvokeResult | None) -> None:
        destination = self.esm.on_failure_destination
        first, last = records[0], records[-1]
        if not destination:
            log.warning("%s: no on-failure destination; skipping %d records (%s..%s) %s", condition,
                        len(records), first.sequence_number, last.sequence_number, self._ctx())
            self.stats.records_discarded += len(records)
            self._commit(records, processed=False)
            return
        message = self.failure_record(records, condition, invoke_count, last_result)
        failures = 0
        while True:
            try:
                self.sender.send(destination, message)
                break
            except UnsupportedDestination as exc:
                log.error("%s; skipping %d records %s", exc, len(records), self._ctx())
                self.stats.records_discarded += len(records)
                self._commit(records, processed=False)
                return
            except Exception as exc:  # destination unavailable: keep the records until it is back
                failures += 1
                self.tail.stats.last_error = f"on-failure destination: {exc}"
                log.warning("could not send to on-failure destination %s (%s); retrying %s",
                            destination, exc, self._ctx())
                self._sleep(self.settings.error_delay(failures))
        self.stats.records_sent_to_destination += len(records)
        self.stats.destination_messages += 1
        log.warning("%s: sent %d records (%s..%s) to %s after %d invocations %s", condition, len(records),
                    first.sequence_number, last.sequence_number, destination, invoke_count, self._ctx())
        self._commit(records, processed=False)

    def failure_record(self, records: list[StreamRecord], condition: str, invoke_count: int,
                       last_result: InvokeResult | None) -> dict:
        return {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.esm.function_arn,
                "condition": condition,
                "approximateInvokeCount": invoke_count,
            },
            "responseContext": {
                "statusCode": last_result.status_code if last_result is not None else 200,
                "executedVersion": "$LATEST",
                "functionError": last_result.function_error if last_result is not None else None,
            },
            "version": "1.0",
            "timestamp": iso_millis(self.clock()),
            "KinesisBatchInfo": {
                "shardId": self.shard_id,
                "startSequenceNumber": records[0].sequence_number,
                "endSequenceNumber": records[-1].sequence_number,
                "approximateArrivalOfFirstRecord": iso_millis(records[0].arrival),
                "approximateArrivalOfLastRecord": iso_millis(records[-1].arrival),
                "batchSize": len(records),
                "streamArn": self.esm.event_source_arn,
            },
        }


class EsmRunner(StreamConsumer):
    """All shard pollers of one event source mapping."""

    kind = KIND

    def __init__(self, esm: EsmSpec, *, reader: ShardReader, invoker: FunctionInvoker,
                 sender: DestinationSender | None, store: CheckpointStore, role_arn: Callable[[], str],
                 settings: PollerSettings = PollerSettings()) -> None:
        super().__init__(esm.uuid, esm.event_source_arn, store=store, settings=settings)
        self.esm = esm
        self.reader = reader
        self.invoker = invoker
        self.sender = sender
        self.role_arn = role_arn
        if esm.parallelization_factor and esm.parallelization_factor > 1:
            log.warning("ParallelizationFactor %d is not supported locally; using 1 esm=%s",
                        esm.parallelization_factor, esm.uuid)

    @property
    def name(self) -> str:
        return self.esm.function_name

    @property
    def function_arn(self) -> str:
        return self.esm.function_arn

    def make_processor(self, shard_id: str, parent_shard_id: str | None) -> EsmShardProcessor:
        return EsmShardProcessor(self.esm, shard_id, reader=self.reader, invoker=self.invoker, sender=self.sender,
                                 store=self.store, role_arn=self.role_arn, settings=self.settings,
                                 parent_shard_id=parent_shard_id)

    def update(self, esm: EsmSpec) -> None:
        """A changed configuration applies from each shard's next batch."""
        self.esm = esm
        for processor in self.processors():
            processor.esm = esm  # type: ignore[attr-defined]

    def describe(self) -> dict:
        data = self.esm.to_status()
        data.pop("stream_arn", None)
        return data


# -- boto3 adapter -------------------------------------------------------------------------
class BotoDestinationSender:
    """Sends on-failure records to SQS queues (SendMessage) or SNS topics (Publish)."""

    def __init__(self, client_factory: Callable[[str, str], Any]) -> None:
        self.client_factory = client_factory
        self._queue_urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def send(self, destination_arn: str, message: dict) -> None:
        service = destination_arn.split(":")[2] if destination_arn.count(":") >= 5 else ""
        region = destination_arn.split(":")[3] if service else ""
        body = json.dumps(message)
        if service == "sqs":
            client = self.client_factory("sqs", region)
            url = self._queue_urls.get(destination_arn)
            if url is None:
                url = client.get_queue_url(QueueName=arn_resource_name(destination_arn),
                                           QueueOwnerAWSAccountId=arn_account(destination_arn))["QueueUrl"]
                with self._lock:
                    self._queue_urls[destination_arn] = url
            try:
                client.send_message(QueueUrl=url, MessageBody=body)
            except Exception:
                with self._lock:
                    self._queue_urls.pop(destination_arn, None)
                raise
        elif service == "sns":
            self.client_factory("sns", region).publish(TopicArn=destination_arn, Message=body)
        else:
            raise UnsupportedDestination(f"on-failure destination {destination_arn!r} is not supported locally "
                                         "(SQS queues and SNS topics are)")
