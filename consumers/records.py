"""The step every stream consumer shares: a Lambda Kinesis record → its invoice events.

A record is a KPL aggregate of invoice events (or, from another producer, one plain
event). :class:`EventDecoder` de-aggregates it strictly (:func:`pipeline.codec.deaggregate`)
and validates each event against the contract; what can never be used — a damaged
aggregate, an invalid event — goes to the quarantine with its reason, its place in the
stream and the consumer that found it, and never blocks the shard. The valid events are
returned for the consumer's own work (DynamoDB, the archive, …). Decoding is pure, so an
event that fails it in any way (not only by breaking the contract) fails it on every
retry: it is quarantined alone and its neighbours in the aggregate go on.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.codec import deaggregate
from pipeline.errors import CorruptRecord, InvalidEvent
from pipeline.events import InvoiceEvent


class Quarantine(Protocol):
    def send(self, *, reason: str, problems: list[dict[str, str]], source: dict[str, Any], data: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class KinesisRecord:
    """The parts of a Lambda Kinesis record a consumer needs."""

    event_source_arn: str
    sequence_number: str
    partition_key: str
    data: bytes
    shard_id: str = ""
    arrival: float = 0.0  # approximateArrivalTimestamp, epoch seconds

    @classmethod
    def from_lambda(cls, record: dict[str, Any]) -> KinesisRecord:
        kinesis = record["kinesis"]
        event_id = record.get("eventID") or ""  # "<shard id>:<sequence number>"
        return cls(
            event_source_arn=record.get("eventSourceARN", ""),
            sequence_number=kinesis["sequenceNumber"],
            partition_key=kinesis.get("partitionKey", ""),
            data=base64.b64decode(kinesis["data"]),
            shard_id=event_id.split(":", 1)[0] if ":" in event_id else "",
            arrival=float(kinesis.get("approximateArrivalTimestamp") or 0.0),
        )


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    event: InvoiceEvent
    sub_sequence_number: int  # its position inside the KPL aggregate


@dataclass(frozen=True, slots=True)
class DecodedRecord:
    record: KinesisRecord
    events: list[DecodedEvent]
    quarantined: int


class EventDecoder:
    def __init__(self, quarantine: Quarantine, *, consumer: str):
        self._quarantine = quarantine
        self.consumer = consumer

    def source(self, record: KinesisRecord) -> dict[str, Any]:
        """Where a quarantined item was read, and by which consumer."""
        return {
            "consumer": self.consumer,
            "stream_arn": record.event_source_arn,
            "shard_id": record.shard_id,
            "sequence_number": record.sequence_number,
            "partition_key": record.partition_key,
        }

    def set_aside(self, record: KinesisRecord, decoded: DecodedEvent, reason: str) -> None:
        """Quarantine a valid event its consumer's store refuses (see :class:`RejectedWrite`)."""
        self._quarantine.send(reason=reason[:500], problems=[],
                              source={**self.source(record), "sub_sequence_number": decoded.sub_sequence_number},
                              data=decoded.event.to_json())

    def decode(self, record: KinesisRecord) -> DecodedRecord:
        source = self.source(record)
        try:
            user_records = deaggregate(record.data)
        except CorruptRecord as exc:
            self._quarantine.send(reason=str(exc), problems=[], source=source, data=record.data)
            return DecodedRecord(record, [], 1)
        events: list[DecodedEvent] = []
        quarantined = 0
        for sub_sequence, user_record in enumerate(user_records):
            try:
                events.append(DecodedEvent(InvoiceEvent.from_json(user_record.data), sub_sequence))
            except Exception as exc:  # noqa: BLE001 - decoding is pure: whatever fails here fails every time
                quarantined += 1
                invalid = isinstance(exc, InvalidEvent)
                self._quarantine.send(
                    reason="invalid invoice event" if invalid else f"event could not be decoded: {type(exc).__name__}: {exc}"[:500],
                    problems=[p.to_dict() for p in exc.problems] if invalid else [],
                    source={**source, "sub_sequence_number": sub_sequence, "user_partition_key": user_record.partition_key},
                    data=user_record.data,
                )
        return DecodedRecord(record, events, quarantined)
