"""The invoice writer's record logic with in-memory ports (consumers/invoices/core.py)."""
from __future__ import annotations

import json

import pytest

from consumers.invoices.core import InvoiceWriter
from consumers.records import KinesisRecord
from pipeline.codec import aggregate
from pipeline.errors import TransientError
from pipeline.partitioning import ShardMap, ShardRange
from tests.factories import event

ONE_SHARD = ShardMap([ShardRange("s", 0, 2**128 - 1)])


class MemoryStore:
    def __init__(self, fail: Exception | None = None):
        self.invoices = {}
        self.fail = fail

    def put_invoices(self, events):
        if self.fail:
            raise self.fail
        for e in events:
            self.invoices[e.invoice_no] = e
        return len(events)


class MemoryQuarantine:
    def __init__(self):
        self.messages = []

    def send(self, **message):
        self.messages.append(message)


def record(payloads) -> KinesisRecord:
    (packed,) = aggregate([(str(i), p) for i, p in enumerate(payloads)], ONE_SHARD)
    return KinesisRecord("arn:aws:kinesis:eu-west-1:1:stream/s", "49590338271490256608559692538361571095921575989136588898",
                         "0", packed.data)


def test_valid_events_are_stored_and_poison_is_quarantined_with_its_reason():
    store, quarantine = MemoryStore(), MemoryQuarantine()
    bad = json.loads(event("536366").to_json())
    bad["lines"][0]["unit_price"] = "cheap"
    result = InvoiceWriter(store, quarantine).handle(record([event("536365").to_json(), json.dumps(bad).encode(), b"not json"]))
    assert set(store.invoices) == {"536365"}
    assert (result.invoices, result.quarantined) == (1, 2)
    first, second = quarantine.messages
    assert first["problems"][0]["field"] == "lines[0].unit_price"
    assert first["source"]["sub_sequence_number"] == 1 and first["source"]["consumer"] == "invoice-writer"
    assert "not valid JSON" in second["problems"][0]["reason"]


def test_a_damaged_aggregate_is_quarantined_whole():
    store, quarantine = MemoryStore(), MemoryQuarantine()
    damaged = record([event().to_json()])
    damaged = KinesisRecord(damaged.event_source_arn, damaged.sequence_number, "0", damaged.data[:-1])
    assert InvoiceWriter(store, quarantine).handle(damaged).quarantined == 1
    assert "digest" in quarantine.messages[0]["reason"] and store.invoices == {}


def test_transient_failures_propagate_for_redelivery():
    with pytest.raises(TransientError):
        InvoiceWriter(MemoryStore(fail=TransientError("throttled")), MemoryQuarantine()).handle(record([event().to_json()]))


class RefusingStore(MemoryStore):
    """Refuses any write that holds one of the given invoices, as DynamoDB refuses an
    item it cannot take (a ValidationException fails the whole BatchWriteItem)."""

    def __init__(self, refused):
        super().__init__()
        self.refused, self.calls = set(refused), 0

    def put_invoices(self, events):
        from pipeline.errors import RejectedWrite

        self.calls += 1
        if any(e.invoice_no in self.refused for e in events):
            raise RejectedWrite("DynamoDB refused BatchWriteItem on t: ValidationException: item too large")
        return super().put_invoices(events)


def test_an_event_the_store_refuses_is_quarantined_alone_and_its_neighbours_are_stored():
    store, quarantine = RefusingStore({"536366"}), MemoryQuarantine()
    payloads = [event(no).to_json() for no in ("536365", "536366", "536367")]
    result = InvoiceWriter(store, quarantine).handle(record(payloads))
    assert set(store.invoices) == {"536365", "536367"}
    assert (result.invoices, result.quarantined) == (2, 1)
    [message] = quarantine.messages
    assert message["reason"].startswith("the invoice store refused the event: DynamoDB refused")
    assert message["source"]["sub_sequence_number"] == 1 and message["source"]["consumer"] == "invoice-writer"
    assert message["data"] == payloads[1]  # the event itself, to be sent again once fixed
    assert store.calls == 4  # the record once, then each event alone: no retries of a refusal


class VersionedStore(MemoryStore):
    """Keeps the newest version of each invoice, as the DynamoDB adapter's conditional write does."""

    def __init__(self):
        super().__init__()
        self.older_versions_skipped = 0

    def put_invoices(self, events):
        written = 0
        for e in events:
            kept = self.invoices.get(e.invoice_no)
            if kept is not None and e.status is not None and e.version < kept.version:
                self.older_versions_skipped += 1
                continue
            self.invoices[e.invoice_no] = e
            written += 1
        return written


def test_an_older_version_arriving_late_is_skipped_counted_and_not_quarantined():
    # GIVEN the completed version of a transaction stored
    store, quarantine = VersionedStore(), MemoryQuarantine()
    completed = event("T1001", invoice_date="2023-03-15T10:00:00", status="completed")
    InvoiceWriter(store, quarantine).handle(record([completed.to_json()]))
    # WHEN its pending version (same date) is delivered afterwards
    pending = event("T1001", invoice_date="2023-03-15T10:00:00", status="pending")
    result = InvoiceWriter(store, quarantine).handle(record([pending.to_json()]))
    # THEN it is skipped and counted, nothing is quarantined, and completed stays
    assert (result.invoices, result.older_skipped, result.quarantined) == (0, 1, 0)
    assert quarantine.messages == [] and store.invoices["T1001"] == completed
