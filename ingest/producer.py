"""KinesisProducer: invoice events onto the stream, KPL-aggregated, within AWS limits.

* Events are packed into aggregated records per target shard (:func:`pipeline.codec.aggregate`).
* PutRecords calls stay within the service limits — 500 records, 5 MiB of data and
  partition keys per call, 1 MiB per record — enforced here rather than trusted to the
  service (the local emulator does not enforce all of them).
* Only the entries a call reports as failed are retried, with jittered exponential
  backoff; after the last attempt a :class:`TransientError` says how many records are
  still unsent (the caller answers 503 and the client retries the request; downstream
  writes are idempotent, so records that did get through are harmless duplicates).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import translate
from pipeline.codec import DEFAULT_AGGREGATE_BYTES, PackedRecord, aggregate
from pipeline.errors import TransientError
from pipeline.events import InvoiceEvent
from pipeline.partitioning import ShardMap
from pipeline.retry import backoff_delay

log = logging.getLogger(__name__)

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
SHARD_MAP_TTL_SECONDS = 60.0


@dataclass
class SendResult:
    events: int = 0
    lines: int = 0
    records: int = 0
    bytes: int = 0
    calls: int = 0
    retried_records: int = 0
    shards: dict[str, int] = field(default_factory=dict)


def plan_calls(records: Sequence[PackedRecord]) -> list[list[PackedRecord]]:
    """Split records into PutRecords calls of at most 500 records and 5 MiB."""
    calls: list[list[PackedRecord]] = []
    current: list[PackedRecord] = []
    size = 0
    for record in records:
        if current and (len(current) == MAX_RECORDS_PER_CALL or size + record.size > MAX_BYTES_PER_CALL):
            calls.append(current)
            current, size = [], 0
        current.append(record)
        size += record.size
    if current:
        calls.append(current)
    return calls


class KinesisProducer:
    def __init__(
        self,
        kinesis_client: Any,
        stream_name: str,
        *,
        aggregate_bytes: int = DEFAULT_AGGREGATE_BYTES,
        max_attempts: int = 6,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._kinesis = kinesis_client
        self.stream_name = stream_name
        self.aggregate_bytes = aggregate_bytes
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._clock = clock
        self._shard_map: ShardMap | None = None
        self._shard_map_at = 0.0

    def shard_map(self) -> ShardMap:
        if self._shard_map is None or self._clock() - self._shard_map_at > SHARD_MAP_TTL_SECONDS:
            shards: list[dict] = []
            kwargs: dict[str, Any] = {"StreamName": self.stream_name}
            while True:
                response = self._call("ListShards", self._kinesis.list_shards, **kwargs)
                shards.extend(response["Shards"])
                token = response.get("NextToken")
                if not token:
                    break
                kwargs = {"NextToken": token}
            self._shard_map = ShardMap.from_list_shards(shards)
            self._shard_map_at = self._clock()
        return self._shard_map

    def send(self, events: Sequence[InvoiceEvent]) -> SendResult:
        result = SendResult(events=len(events), lines=sum(len(e.lines) for e in events))
        if not events:
            return result
        packed = aggregate(((e.partition_key, e.to_json()) for e in events), self.shard_map(), max_bytes=self.aggregate_bytes)
        result.records = len(packed)
        result.bytes = sum(r.size for r in packed)
        for record in packed:
            result.shards[record.shard_id] = result.shards.get(record.shard_id, 0) + 1
        for batch in plan_calls(packed):
            self._put_with_retries(batch, result)
        return result

    def _put_with_retries(self, batch: list[PackedRecord], result: SendResult) -> None:
        pending = batch
        for attempt in range(1, self.max_attempts + 1):
            result.calls += 1
            try:
                response = self._call(
                    "PutRecords",
                    self._kinesis.put_records,
                    StreamName=self.stream_name,
                    Records=[r.to_put_entry() for r in pending],
                )
            except TransientError:
                if attempt == self.max_attempts:
                    raise
                self._backoff(attempt)
                continue
            failed = [r for r, entry in zip(pending, response["Records"]) if entry.get("ErrorCode")]
            if not failed:
                return
            codes = {entry.get("ErrorCode") for entry in response["Records"] if entry.get("ErrorCode")}
            log.info("PutRecords: %d of %d records failed (%s); retrying them", len(failed), len(pending), ", ".join(sorted(codes)))
            result.retried_records += len(failed)
            pending = failed
            if attempt < self.max_attempts:
                self._backoff(attempt)
        self._shard_map = None  # a reshard is one reason for persistent failures
        raise TransientError(f"{len(pending)} Kinesis records still failing after {self.max_attempts} attempts")

    def _call(self, operation: str, method: Callable[..., dict], **kwargs: Any) -> dict:
        try:
            return method(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"{operation} on Kinesis stream {self.stream_name!r}") from exc

    def _backoff(self, attempt: int) -> None:
        self._sleep(backoff_delay(attempt, self.base_delay, self.max_delay))
