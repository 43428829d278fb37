"""What the order notifier does with one Kinesis record (pure: ports are passed in).

An invoice whose total reaches the large-order threshold is announced on the
large-orders topic once, however often its event is delivered (Kinesis delivers at
least once, batches are retried from their failed record, the same invoice may be sent
again by its producer or re-put by ``shopstream redrive``). What makes it once is a
ledger, one item per announced invoice number, read before publishing and written after:

1. the ledger says the invoice was announced: nothing is published;
2. otherwise the message is published, then the ledger records it (with SNS's message
   id). A failed publish raises: nothing is recorded, the record is retried, and the
   retry publishes. A failed record raises too: the retry finds no entry and publishes
   again — the one case of a second message, which carries the same
   ``notification_id`` (the invoice number) for subscribers to drop.

Two deliveries of one invoice never run at the same time: its events all go to one
shard (the partition key is the invoice number), and a shard's records reach one
invocation at a time, in order. So the read-then-write is not racing anyone; the
ledger's write is conditional anyway, and a lost race is logged.

Which invoices: regular invoices (not cancellations, whose totals are negative, nor
``A`` adjustments, which are bookkeeping, not orders) whose total — the sum of their
lines' amounts, exact — is at least the threshold. The first version of an invoice to
reach it is announced; a later version of the same invoice is not announced again.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from consumers.records import EventDecoder, KinesisRecord, Quarantine
from pipeline.events import InvoiceEvent, money_display, money_str

CONSUMER = "order-notifier"
SUBJECT_LIMIT = 100  # SNS: ASCII, no line breaks, at most 100 characters

log = logging.getLogger(__name__)  # consumers.*: JSON through the function's logger (pipeline/logs.py)


class Ledger(Protocol):
    def announced(self, invoice_no: str) -> bool: ...

    def record(self, invoice_no: str, *, event_id: str, total: Decimal, message_id: str) -> bool:
        """Records the announcement; False when another delivery recorded one first."""
        ...


class Publisher(Protocol):
    def publish(self, *, subject: str, message: str, attributes: dict[str, str]) -> str:
        """Publishes one message; returns its message id."""
        ...


@dataclass(frozen=True, slots=True)
class RecordResult:
    events: int
    announced: list[str]  # invoice numbers published for by this record
    already: int  # large invoices found in the ledger: delivered again, not announced again
    quarantined: int


def is_large(event: InvoiceEvent, threshold: Decimal) -> bool:
    return not event.is_cancellation and not event.is_adjustment and event.total >= threshold


def _ascii(text: str) -> str:
    return re.sub(r"[^\x20-\x7e]", "?", text)


def subject(event: InvoiceEvent) -> str:
    text = _ascii(f"Large order {event.invoice_no}: {money_display(event.total)} ({event.country})")
    return text if len(text) <= SUBJECT_LIMIT else text[: SUBJECT_LIMIT - 3] + "..."


def message(event: InvoiceEvent, threshold: Decimal) -> str:
    """The message body: JSON, every amount exact as text."""
    return json.dumps({
        "kind": "large_order",
        "notification_id": event.invoice_no,
        "invoice_no": event.invoice_no,
        "invoice_date": event.invoice_date,
        "customer_id": event.customer_id,
        "country": event.country,
        "total": money_str(event.total),
        "threshold": money_str(threshold),
        "lines": len(event.lines),
        "event_id": event.event_id,
    }, ensure_ascii=False, sort_keys=True)


def attributes(event: InvoiceEvent) -> dict[str, str]:
    """Message attributes, so a subscription's filter policy can select on them."""
    return {"kind": "large_order", "invoice_no": event.invoice_no, "country": event.country,
            "total": money_str(event.total)}


class OrderNotifier:
    def __init__(self, ledger: Ledger, publisher: Publisher, quarantine: Quarantine, *, threshold: Decimal):
        if threshold <= 0:
            raise ValueError(f"the large-order threshold must be positive, got {threshold}")
        self._ledger, self._publisher, self.threshold = ledger, publisher, threshold
        self._decoder = EventDecoder(quarantine, consumer=CONSUMER)

    def handle(self, record: KinesisRecord) -> RecordResult:
        decoded = self._decoder.decode(record)
        announced: list[str] = []
        already = 0
        for item in decoded.events:
            event = item.event
            if not is_large(event, self.threshold):
                continue
            if event.invoice_no in announced or self._ledger.announced(event.invoice_no):
                already += 1
                continue
            message_id = self._publisher.publish(subject=subject(event), message=message(event, self.threshold),
                                                 attributes=attributes(event))
            if not self._ledger.record(event.invoice_no, event_id=event.event_id, total=event.total,
                                       message_id=message_id):
                log.warning("invoice %s was announced by another delivery at the same time (message %s is a second one)",
                            event.invoice_no, message_id)
            announced.append(event.invoice_no)
        return RecordResult(len(decoded.events), announced, already, decoded.quarantined)
