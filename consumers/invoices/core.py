"""What the invoice writer does with one Kinesis record (pure: ports are passed in).

A record is a KPL aggregate of invoice events. The shared decoding step
(:mod:`consumers.records`) quarantines what can never be used; the valid events are
written to DynamoDB in one go. Nothing here retries or swallows a transient failure: it
propagates, the record is reported in ``batchItemFailures`` and the event source mapping
redelivers it. Redelivery is harmless because writes are idempotent.

An event with a status (a version of a transaction) is written only if the store holds no
newer version; an older one arriving late is skipped: counted in
``RecordResult.older_skipped`` and logged, neither an error nor quarantined.

A write DynamoDB refuses for what it holds (:class:`RejectedWrite`: a validation error,
which fails the same way on every retry) is not retried: the record's events are written
one by one, each one refused alone is quarantined with the store's reason, and its
neighbours in the aggregate are stored.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from consumers.records import DecodedEvent, EventDecoder, KinesisRecord, Quarantine
from pipeline.errors import RejectedWrite
from pipeline.events import InvoiceEvent

CONSUMER = "invoice-writer"


class InvoiceStore(Protocol):
    def put_invoices(self, events: Iterable[InvoiceEvent]) -> int: ...


@dataclass(frozen=True, slots=True)
class RecordResult:
    invoices: int
    lines: int
    items: int
    quarantined: int
    older_skipped: int = 0  # versioned events not written: the store holds a newer version


class InvoiceWriter:
    def __init__(self, store: InvoiceStore, quarantine: Quarantine):
        self._store = store
        self._decoder = EventDecoder(quarantine, consumer=CONSUMER)

    def handle(self, record: KinesisRecord) -> RecordResult:
        decoded = self._decoder.decode(record)
        events = [d.event for d in decoded.events]
        skipped_before = self._older_skipped()
        try:
            items = self._store.put_invoices(events) if events else 0
        except RejectedWrite:
            result = self._one_by_one(record, decoded.events, decoded.quarantined)
        else:
            result = RecordResult(len(events), sum(len(e.lines) for e in events), items, decoded.quarantined)
        skipped = self._older_skipped() - skipped_before
        if skipped:
            return RecordResult(result.invoices - skipped, result.lines, result.items, result.quarantined, skipped)
        return result

    def _older_skipped(self) -> int:
        """The store's count of older versions it skipped (stores without versions: 0)."""
        return getattr(self._store, "older_versions_skipped", 0)

    def _one_by_one(self, record: KinesisRecord, events: list[DecodedEvent], quarantined: int) -> RecordResult:
        written: list[InvoiceEvent] = []
        items = 0
        for decoded in events:
            try:
                items += self._store.put_invoices([decoded.event])
            except RejectedWrite as exc:
                quarantined += 1
                self._decoder.set_aside(record, decoded, f"the invoice store refused the event: {exc}")
            else:
                written.append(decoded.event)
        return RecordResult(len(written), sum(len(e.lines) for e in written), items, quarantined)
