"""Kinesis event source mappings, with AWS Lambda's semantics.

For every enabled mapping on a Kinesis stream the runtime runs one poller thread per
shard (:class:`ShardPoller` around a :class:`ShardConsumer`), the way Lambda's
ParallelizationFactor 1 works (a larger factor is accepted, logged, and treated as 1).

Reading
    The first position comes from the checkpoint (:mod:`.checkpoints`) if there is one,
    else from StartingPosition: ``TRIM_HORIZON``; ``AT_TIMESTAMP`` (the mapping's
    StartingPositionTimestamp when the emulator returns it, else TRIM_HORIZON with a
    warning); ``LATEST`` means "what arrives after the mapping was created": Lambda's
    poller starts at creation, but the runtime may discover a mapping seconds later
    (or start after ``terraform apply``), so it reads ``AT_TIMESTAMP`` = the mapping's
    LastModified (whole seconds in moto; clamped to now) and persists that anchor so a
    restart does not skip what arrived meanwhile. GetRecords returning nothing → poll
    again after ``idle_delay`` (200 ms). A closed shard (no next iterator, or ListShards
    gives its EndingSequenceNumber and an empty read started past it) is read to its end,
    then marked ``SHARD_END``; a child shard starts once its parent is finished.

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

Drain detection
    Each shard keeps ``last_empty_poll_started_at``: the wall-clock time at which a
    GetRecords that returned no records (and was 0 ms behind the tip) was *started*
    while nothing was buffered or in flight for that shard. A writer that finished at T
    knows the consumers have drained when every shard of every mapping shows a value
    greater than T (or is finished). See :func:`devstack.runtime.client.wait_until_drained`.
"""
from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Protocol

from devstack.runtime.checkpoints import Checkpoint, CheckpointStore
from devstack.runtime.model import INVOKE_PAYLOAD_LIMIT, EsmSpec, arn_account, arn_resource_name
from devstack.runtime.workers import InvokeResult, iso_millis, service_error

log = logging.getLogger("devstack.runtime.kinesis")

GET_RECORDS_LIMIT = 10000
DEFAULT_RETENTION_SECONDS = 24 * 3600
_ENVELOPE = len('{"Records":[]}')


# -- values and ports ----------------------------------------------------------------------
@dataclass
class KinesisRecord:
    sequence_number: str
    partition_key: str
    data: bytes
    arrival: float  # epoch seconds
    encoded: str | None = field(default=None, repr=False, compare=False)


@dataclass
class RecordsPage:
    records: list[KinesisRecord]
    next_iterator: str | None
    millis_behind_latest: int = 0


class ShardReader(Protocol):
    def get_shard_iterator(self, shard_id: str, iterator_type: str, value: str | float | None = None) -> str: ...

    def get_records(self, iterator: str, limit: int) -> RecordsPage: ...


class DestinationSender(Protocol):
    def send(self, destination_arn: str, message: dict) -> None: ...


class FunctionInvoker(Protocol):
    def invoke(self, function: str, payload: bytes, *, request_id: str | None = None) -> InvokeResult: ...


class UnsupportedDestination(ValueError):
    pass


class ExpiredIterator(Exception):
    """The shard iterator is no longer valid: get a new one from the last position."""


@dataclass(frozen=True)
class PollerSettings:
    idle_delay: float = 0.2
    retry_base_delay: float = 0.05
    retry_max_delay: float = 2.0
    error_base_delay: float = 0.2
    error_max_delay: float = 5.0
    retention_seconds: int = DEFAULT_RETENTION_SECONDS

    def retry_delay(self, failures: int) -> float:
        """The wait before retrying a batch that failed ``failures`` times."""
        return min(self.retry_max_delay, self.retry_base_delay * 2 ** max(0, failures - 1))

    def error_delay(self, errors: int) -> float:
        """The wait after ``errors`` consecutive failures of a read or of a send."""
        return min(self.error_max_delay, self.error_base_delay * 2 ** min(errors - 1, 8))


@dataclass
class ShardStats:
    shard_id: str
    parent_shard_id: str | None = None
    checkpoint: str | None = None
    records_processed: int = 0
    batches_invoked: int = 0
    batch_failures: int = 0
    retries: int = 0
    bisections: int = 0
    records_sent_to_destination: int = 0
    destination_messages: int = 0
    records_discarded: int = 0
    polls: int = 0
    last_empty_poll_started_at: float | None = None
    last_batch_at: float | None = None
    in_flight: bool = False
    pending_records: int = 0
    millis_behind_latest: int | None = None
    finished: bool = False
    last_error: str | None = None
    consecutive_read_errors: int = 0

    def to_status(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


# -- the state machine ---------------------------------------------------------------------
IDLE, WAITING, INVOKED, FINISHED, STOPPED = "idle", "waiting", "invoked", "finished", "stopped"


@dataclass
class _Segment:
    records: list[KinesisRecord]
    failures: int = 0
    last_result: InvokeResult | None = None


class _Stopped(Exception):
    pass


@dataclass
class _Outcome:
    kind: str  # success | partial | failure | throttled
    index: int = 0
    reason: str = ""


class ShardConsumer:
    """Reads one shard for one mapping and drives the invocations (no threads inside)."""

    def __init__(self, esm: EsmSpec, shard_id: str, *, reader: ShardReader, invoker: FunctionInvoker,
                 sender: DestinationSender | None, store: CheckpointStore, role_arn: Callable[[], str] | str = "",
                 settings: PollerSettings = PollerSettings(), parent_shard_id: str | None = None,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 stop_event: threading.Event | None = None) -> None:
        self.esm = esm
        self.shard_id = shard_id
        self.reader = reader
        self.invoker = invoker
        self.sender = sender
        self.store = store
        self._role = role_arn
        self.settings = settings
        self.clock = clock
        self.monotonic = monotonic
        self.stop_event = stop_event or threading.Event()
        self.stats = ShardStats(shard_id, parent_shard_id)
        self.iterator: str | None = None
        self.buffer: deque[KinesisRecord] = deque()
        self.last_fetched: str | None = None
        self.closed = False
        self.ending_sequence_number: str | None = None  # set when ListShards reports the shard closed
        self.window_started: float | None = None
        checkpoint = store.get(esm.uuid, shard_id)
        self.checkpoint = checkpoint
        if checkpoint is not None:
            self.stats.checkpoint = checkpoint.describe()
            self.stats.finished = checkpoint.kind == "SHARD_END"

    # -- helpers ---------------------------------------------------------------------------
    @property
    def role_arn(self) -> str:
        return self._role() if callable(self._role) else self._role

    def _ctx(self) -> str:
        return f"esm={self.esm.uuid} function={self.esm.function_name} shard={self.shard_id}"

    def _sleep(self, seconds: float) -> None:
        if seconds > 0 and self.stop_event.wait(seconds):
            raise _Stopped()
        if self.stop_event.is_set():
            raise _Stopped()

    # -- reading ---------------------------------------------------------------------------
    def _starting_position(self) -> tuple[str, Any]:
        esm = self.esm
        position = (esm.starting_position or "TRIM_HORIZON").upper()
        if position == "AT_TIMESTAMP":
            if esm.starting_position_timestamp is not None:
                return "AT_TIMESTAMP", float(esm.starting_position_timestamp)
            log.warning("StartingPosition AT_TIMESTAMP without a timestamp from the emulator; "
                        "reading from TRIM_HORIZON %s", self._ctx())
            return "TRIM_HORIZON", None
        if position == "LATEST":
            anchor = esm.last_modified if esm.last_modified is not None else self.clock()
            anchor = min(anchor, self.clock())
            self._save(Checkpoint.at_timestamp(anchor))
            return "AT_TIMESTAMP", anchor
        return "TRIM_HORIZON", None

    def _ensure_iterator(self) -> None:
        if self.iterator is not None or self.closed:
            return
        if self.last_fetched is not None:
            kind, value = "AFTER_SEQUENCE_NUMBER", self.last_fetched
        elif self.checkpoint is not None and self.checkpoint.kind == "AFTER_SEQUENCE_NUMBER":
            kind, value = "AFTER_SEQUENCE_NUMBER", self.checkpoint.value
        elif self.checkpoint is not None and self.checkpoint.kind == "AT_TIMESTAMP":
            kind, value = "AT_TIMESTAMP", float(self.checkpoint.value)
        else:
            kind, value = self._starting_position()
        self.iterator = self.reader.get_shard_iterator(self.shard_id, kind, value)
        log.debug("shard iterator %s %s %s", kind, value, self._ctx())

    def _fetch(self, limit: int) -> None:
        started = self.clock()
        nothing_pending = not self.buffer
        try:
            page = self.reader.get_records(self.iterator, max(1, min(limit, GET_RECORDS_LIMIT)))
        except ExpiredIterator:
            self.iterator = None
            raise
        self.stats.polls += 1
        self.stats.millis_behind_latest = page.millis_behind_latest
        self.iterator = page.next_iterator
        if page.next_iterator is None:
            self.closed = True
        if page.records:
            self.buffer.extend(page.records)
            self.last_fetched = page.records[-1].sequence_number
            if self.window_started is None:
                self.window_started = self.monotonic()
        elif nothing_pending and not page.millis_behind_latest:
            self.stats.last_empty_poll_started_at = started
        self.stats.pending_records = len(self.buffer)

    def window_remaining(self) -> float:
        if self.window_started is None:
            return 0.0
        return max(0.0, self.esm.maximum_batching_window - (self.monotonic() - self.window_started))

    # -- one step --------------------------------------------------------------------------
    def step(self) -> str:
        """Read once and, when a batch is due, process it to the end (retries included)."""
        if self.stats.finished:
            return FINISHED
        esm = self.esm
        self._ensure_iterator()
        if len(self.buffer) < esm.batch_size and not self.closed:
            self._fetch(esm.batch_size - len(self.buffer))
        if not self.buffer:
            if self.closed or self._read_to_end():
                self._finish()
                return FINISHED
            return IDLE
        if (esm.maximum_batching_window > 0 and len(self.buffer) < esm.batch_size and not self.closed
                and self.window_remaining() > 0):
            return WAITING
        batch = self._take_batch(esm)
        try:
            self._process(batch)
        except _Stopped:
            self._abandon()
            return STOPPED
        except Exception:
            self._abandon()  # never skip records: re-read from the checkpoint
            raise
        return INVOKED

    def _read_to_end(self) -> bool:
        """A shard ListShards reports closed, read past its last sequence number (moto, unlike
        AWS, keeps returning an iterator at the end of a closed shard)."""
        ending = self.ending_sequence_number
        if ending is None or self.stats.last_empty_poll_started_at is None:
            return False
        position = self.last_fetched or (self.checkpoint.sequence_number if self.checkpoint else None)
        try:
            return position is None or int(position) >= int(ending)
        except ValueError:
            return False

    def _finish(self) -> None:
        self.stats.finished = True
        self.stats.last_empty_poll_started_at = self.clock()
        self._save(Checkpoint.shard_end())
        log.info("shard finished (closed and fully read) %s", self._ctx())

    def _abandon(self) -> None:
        """Stopping mid-batch: forget what is buffered; a restart reads from the checkpoint."""
        self.buffer.clear()
        self.iterator = None
        self.last_fetched = None
        self.window_started = None
        self.stats.pending_records = 0
        self.stats.in_flight = False

    # -- batches ---------------------------------------------------------------------------
    def _encode(self, record: KinesisRecord) -> str:
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

    def _take_batch(self, esm: EsmSpec) -> list[KinesisRecord]:
        batch: list[KinesisRecord] = []
        size = _ENVELOPE
        while self.buffer and len(batch) < esm.batch_size:
            record = self.buffer[0]
            extra = len(self._encode(record)) + (1 if batch else 0)
            if batch and size + extra > INVOKE_PAYLOAD_LIMIT:
                log.info("batch cut at %d records to stay under the 6 MB payload limit %s",
                         len(batch), self._ctx())
                break
            batch.append(self.buffer.popleft())
            size += extra
        if not self.buffer:
            self.window_started = None
        self.stats.pending_records = len(self.buffer)
        return batch

    def event_payload(self, records: Iterable[KinesisRecord]) -> bytes:
        return ('{"Records":[' + ",".join(self._encode(r) for r in records) + "]}").encode()

    def _process(self, records: list[KinesisRecord]) -> None:
        self.stats.in_flight = True
        try:
            stack = [_Segment(records)]
            while stack:
                if self.stop_event.is_set():
                    raise _Stopped()
                segment = self._drop_expired(stack.pop())
                if segment is None:
                    continue
                result = self._invoke(segment.records)
                outcome = self._classify(result, segment.records)
                if outcome.kind == "success":
                    self._commit(segment.records, processed=True)
                    continue
                if outcome.kind == "throttled":
                    log.warning("invocation not run (%s: %s); retrying without consuming a retry %s",
                                result.service_error, result.error_message, self._ctx())
                    self._sleep(self.settings.retry_delay(segment.failures + 1))
                    stack.append(_Segment(segment.records, segment.failures, segment.last_result))
                    continue
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
            self.stats.in_flight = False

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

    def _invoke(self, records: list[KinesisRecord]) -> InvokeResult:
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

    def _classify(self, result: InvokeResult, records: list[KinesisRecord]) -> _Outcome:
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
    def _save(self, checkpoint: Checkpoint) -> None:
        self.store.put(self.esm.uuid, self.shard_id, checkpoint)
        self.checkpoint = checkpoint
        self.stats.checkpoint = checkpoint.describe()

    def _commit(self, records: list[KinesisRecord], *, processed: bool) -> None:
        self._save(Checkpoint.after(records[-1].sequence_number))
        if processed:
            self.stats.records_processed += len(records)
        for record in records:
            record.encoded = None

    def _give_up(self, records: list[KinesisRecord], condition: str, invoke_count: int,
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
                self.stats.last_error = f"on-failure destination: {exc}"
                log.warning("could not send to on-failure destination %s (%s); retrying %s",
                            destination, exc, self._ctx())
                self._sleep(self.settings.error_delay(failures + 1))  # 2 x error_base_delay after the first
        self.stats.records_sent_to_destination += len(records)
        self.stats.destination_messages += 1
        log.warning("%s: sent %d records (%s..%s) to %s after %d invocations %s", condition, len(records),
                    first.sequence_number, last.sequence_number, destination, invoke_count, self._ctx())
        self._commit(records, processed=False)

    def failure_record(self, records: list[KinesisRecord], condition: str, invoke_count: int,
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


# -- threads -------------------------------------------------------------------------------
class ShardPoller(threading.Thread):
    """Runs a :class:`ShardConsumer` until stopped; read errors are retried with backoff."""

    def __init__(self, consumer: ShardConsumer, *, can_start: Callable[[], bool] = lambda: True) -> None:
        super().__init__(name=f"kinesis-{consumer.esm.uuid[:8]}-{consumer.shard_id}", daemon=True)
        self.consumer = consumer
        self.can_start = can_start

    def stop(self) -> None:
        self.consumer.stop_event.set()

    def run(self) -> None:
        c = self.consumer
        stop = c.stop_event
        settings = c.settings
        while not stop.is_set() and not self.can_start():
            stop.wait(settings.idle_delay)
        while not stop.is_set():
            try:
                outcome = c.step()
            except Exception as exc:
                c.stats.consecutive_read_errors += 1
                n = c.stats.consecutive_read_errors
                c.stats.last_error = f"{type(exc).__name__}: {exc}"
                (log.warning if n in (1, 2) or n % 20 == 0 else log.debug)(
                    "reading the shard failed (%s), retrying (attempt %d) %s", c.stats.last_error, n, c._ctx())
                stop.wait(settings.error_delay(n))
                continue
            if c.stats.consecutive_read_errors:
                log.info("reading the shard recovered after %d errors %s", c.stats.consecutive_read_errors, c._ctx())
                c.stats.consecutive_read_errors = 0
                c.stats.last_error = None
            if outcome in (FINISHED, STOPPED):
                break
            if outcome == IDLE:
                stop.wait(settings.idle_delay)
            elif outcome == WAITING:
                stop.wait(max(0.001, min(settings.idle_delay, c.window_remaining())))


class EsmRunner:
    """All shard pollers of one event source mapping."""

    def __init__(self, esm: EsmSpec, *, reader: ShardReader, invoker: FunctionInvoker,
                 sender: DestinationSender | None, store: CheckpointStore, role_arn: Callable[[], str],
                 settings: PollerSettings = PollerSettings()) -> None:
        self.esm = esm
        self.reader = reader
        self.invoker = invoker
        self.sender = sender
        self.store = store
        self.role_arn = role_arn
        self.settings = settings
        self.pollers: dict[str, ShardPoller] = {}
        self._lock = threading.Lock()
        if esm.parallelization_factor and esm.parallelization_factor > 1:
            log.warning("ParallelizationFactor %d is not supported locally; using 1 esm=%s",
                        esm.parallelization_factor, esm.uuid)

    def update(self, esm: EsmSpec) -> None:
        """A changed configuration applies from each shard's next batch."""
        self.esm = esm
        with self._lock:
            for poller in self.pollers.values():
                poller.consumer.esm = esm

    def sync_shards(self, shards: Iterable[tuple], retention_seconds: int | None = None) -> None:
        """``shards``: (shard id, parent shard id, ending sequence number or None while open)."""
        if retention_seconds and retention_seconds != self.settings.retention_seconds:
            self.settings = replace(self.settings, retention_seconds=retention_seconds)
        shards = list(shards)
        with self._lock:
            known = {s[0] for s in shards} | set(self.pollers)
            for shard_id, parent, ending in shards:
                if shard_id in self.pollers:
                    if ending is not None:
                        self.pollers[shard_id].consumer.ending_sequence_number = ending
                    continue
                consumer = ShardConsumer(self.esm, shard_id, reader=self.reader, invoker=self.invoker,
                                         sender=self.sender, store=self.store, role_arn=self.role_arn,
                                         settings=self.settings, parent_shard_id=parent)
                consumer.ending_sequence_number = ending
                poller = ShardPoller(consumer, can_start=self._parent_done(parent, known))
                self.pollers[shard_id] = poller
                log.info("polling shard esm=%s function=%s stream=%s shard=%s from=%s", self.esm.uuid,
                         self.esm.function_name, self.esm.stream_name, shard_id,
                         consumer.stats.checkpoint or self.esm.starting_position)
                poller.start()

    def _parent_done(self, parent: str | None, known: set[str]) -> Callable[[], bool]:
        def done() -> bool:
            if parent is None or parent not in known:
                return True
            poller = self.pollers.get(parent)
            if poller is not None:
                return poller.consumer.stats.finished
            checkpoint = self.store.get(self.esm.uuid, parent)
            return checkpoint is not None and checkpoint.kind == "SHARD_END"
        return done

    def stop(self) -> None:
        for poller in list(self.pollers.values()):
            poller.stop()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for poller in list(self.pollers.values()):
            poller.join(max(0.0, deadline - time.monotonic()))
            if poller.is_alive():
                log.warning("poller did not stop in time (an invocation is still running) %s", poller.name)

    def status(self) -> dict:
        data = self.esm.to_status()
        data["shards"] = [p.consumer.stats.to_status() for _, p in sorted(self.pollers.items())]
        return data


# -- boto3 adapters ------------------------------------------------------------------------
class BotoShardReader:
    """Reads a stream of the emulator (or AWS) with a boto3 Kinesis client."""

    def __init__(self, client, stream_arn: str) -> None:
        self.client = client
        self.stream_arn = stream_arn
        self.stream_name = arn_resource_name(stream_arn)

    def get_shard_iterator(self, shard_id: str, iterator_type: str, value: str | float | None = None) -> str:
        # StreamName, not StreamARN: moto builds the iterator from the name it was given.
        kwargs: dict[str, Any] = {"StreamName": self.stream_name, "ShardId": shard_id,
                                  "ShardIteratorType": iterator_type}
        if iterator_type in ("AFTER_SEQUENCE_NUMBER", "AT_SEQUENCE_NUMBER"):
            kwargs["StartingSequenceNumber"] = str(value)
        elif iterator_type == "AT_TIMESTAMP":
            kwargs["Timestamp"] = float(value)
        return self.client.get_shard_iterator(**kwargs)["ShardIterator"]

    def get_records(self, iterator: str, limit: int) -> RecordsPage:
        try:
            response = self.client.get_records(ShardIterator=iterator, Limit=limit)
        except self.client.exceptions.ExpiredIteratorException as exc:
            raise ExpiredIterator(str(exc)) from exc
        records = [
            KinesisRecord(
                sequence_number=r["SequenceNumber"],
                partition_key=r.get("PartitionKey", ""),
                data=r.get("Data", b""),
                arrival=_arrival(r.get("ApproximateArrivalTimestamp")),
            )
            for r in response.get("Records", [])
        ]
        return RecordsPage(records, response.get("NextShardIterator"), int(response.get("MillisBehindLatest") or 0))


def _arrival(value: Any) -> float:
    if value is None:
        return time.time()
    if hasattr(value, "timestamp"):
        return round(value.timestamp(), 3)
    return float(value)


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
