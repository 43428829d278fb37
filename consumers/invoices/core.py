"""What the invoice writer does with one Kinesis record (pure: ports are passed in).

A record is a KPL aggregate of invoice events. Each event is validated against the
contract; the valid ones are written to DynamoDB in one go, the invalid ones (and a
damaged aggregate) are quarantined with their reason. Nothing here retries or swallows a
transient failure: it propagates, the record is reported in ``batchItemFailures`` and the
event source mapping redelivers it. Redelivery is harmless because writes are idempotent.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Iterable, Protocol

from pipeline.codec import deaggregate
from pipeline.errors import CorruptRecord, InvalidEvent
from pipeline.events import InvoiceEvent


class InvoiceStore(Protocol):
    def put_invoices(self, events: Iterable[InvoiceEvent]) -> int: ...


class Quarantine(Protocol):
    def send(self, *, reason: str, problems: list[dict[str, str]], source: dict[str, Any], data: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class KinesisRecord:
    """The parts of a Lambda Kinesis record the writer needs."""

    event_source_arn: str
    sequence_number: str
    partition_key: str
    data: bytes

    @classmethod
    def from_lambda(cls, record: dict[str, Any]) -> "KinesisRecord":
        kinesis = record["kinesis"]
        return cls(
            event_source_arn=record.get("eventSourceARN", ""),
            sequence_number=kinesis["sequenceNumber"],
            partition_key=kinesis.get("partitionKey", ""),
            data=base64.b64decode(kinesis["data"]),
        )


@dataclass(frozen=True, slots=True)
class RecordResult:
    invoices: int
    lines: int
    items: int
    quarantined: int


class InvoiceWriter:
    def __init__(self, store: InvoiceStore, quarantine: Quarantine):
        self._store = store
        self._quarantine = quarantine

    def handle(self, record: KinesisRecord) -> RecordResult:
        source = {
            "stream_arn": record.event_source_arn,
            "sequence_number": record.sequence_number,
            "partition_key": record.partition_key,
        }
        try:
            user_records = deaggregate(record.data)
        except CorruptRecord as exc:
            self._quarantine.send(reason=str(exc), problems=[], source=source, data=record.data)
            return RecordResult(0, 0, 0, 1)
        events: list[InvoiceEvent] = []
        quarantined = 0
        for sub_sequence, user_record in enumerate(user_records):
            try:
                events.append(InvoiceEvent.from_json(user_record.data))
            except InvalidEvent as exc:
                quarantined += 1
                self._quarantine.send(
                    reason="invalid invoice event",
                    problems=[p.to_dict() for p in exc.problems],
                    source={**source, "sub_sequence_number": sub_sequence, "user_partition_key": user_record.partition_key},
                    data=user_record.data,
                )
        items = self._store.put_invoices(events) if events else 0
        return RecordResult(len(events), sum(len(e.lines) for e in events), items, quarantined)
