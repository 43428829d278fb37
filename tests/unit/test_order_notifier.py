"""The order notifier's record logic with in-memory ports (consumers/notifications/core.py):
a large invoice is announced once however often its event is delivered."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from consumers.notifications.core import OrderNotifier, is_large, subject
from consumers.notifications.store import InMemoryLedger
from consumers.records import KinesisRecord
from pipeline.codec import aggregate
from pipeline.errors import TransientError
from pipeline.partitioning import ShardMap, ShardRange
from tests.factories import event, line

ONE_SHARD = ShardMap([ShardRange("s", 0, 2**128 - 1)])
THRESHOLD = Decimal("5000")


class MemoryPublisher:
    def __init__(self, failures: int = 0):
        self.sent: list[dict] = []
        self.failures = failures

    def publish(self, *, subject, message, attributes):
        if self.failures:
            self.failures -= 1
            raise TransientError("Publish throttled (test)")
        self.sent.append({"subject": subject, "message": json.loads(message), "attributes": attributes})
        return f"m-{len(self.sent)}"


class MemoryQuarantine:
    def __init__(self):
        self.messages = []

    def send(self, **message):
        self.messages.append(message)


class FailingLedger(InMemoryLedger):
    """Records fail ``failures`` times (the function dies between publishing and recording)."""

    def __init__(self, failures: int):
        super().__init__()
        self.failures = failures

    def record(self, invoice_no, **kwargs):
        if self.failures:
            self.failures -= 1
            raise TransientError("PutItem throttled (test)")
        return super().record(invoice_no, **kwargs)


def large(invoice_no: str = "536365", amount: str = "5000.00", **kwargs):
    return event(invoice_no, lines=[line(1, quantity=1, unit_price=amount)], **kwargs)


def record(*events) -> KinesisRecord:
    (packed,) = aggregate([(e.invoice_no, e.to_json()) for e in events], ONE_SHARD)
    return KinesisRecord("arn:aws:kinesis:eu-west-1:1:stream/s", "4959", "0", packed.data)


def notifier(ledger=None, publisher=None, quarantine=None):
    return OrderNotifier(ledger if ledger is not None else InMemoryLedger(), publisher or MemoryPublisher(),
                         quarantine or MemoryQuarantine(), threshold=THRESHOLD)


def test_an_invoice_at_the_threshold_is_announced_with_its_exact_total_and_one_below_is_not():
    publisher = MemoryPublisher()
    result = notifier(publisher=publisher).handle(record(large("536365", "5000.00"), large("536366", "4999.99")))
    assert result.announced == ["536365"]
    (sent,) = publisher.sent
    assert sent["message"]["total"] == "5000.00" and sent["message"]["threshold"] == "5000.00"
    assert sent["message"]["notification_id"] == "536365" and sent["message"]["customer_id"] == "17850"
    assert sent["attributes"] == {"kind": "large_order", "invoice_no": "536365", "country": "United Kingdom",
                                  "total": "5000.00"}
    assert sent["subject"] == "Large order 536365: 5,000.00 (United Kingdom)"


def test_an_event_delivered_twice_in_one_record_and_again_later_is_announced_once():
    ledger, publisher = InMemoryLedger(), MemoryPublisher()
    n = notifier(ledger, publisher)
    first = n.handle(record(large(), large()))
    again = n.handle(record(large()))
    assert len(publisher.sent) == 1 and first.announced == ["536365"] and first.already == 1
    assert again.announced == [] and again.already == 1
    assert ledger.items["536365"]["message_id"] == "m-1" and ledger.items["536365"]["total"] == Decimal("5000.00")


def test_a_later_version_of_an_announced_invoice_is_not_announced_again():
    publisher = MemoryPublisher()
    n = notifier(publisher=publisher)
    n.handle(record(large(amount="6000")))
    n.handle(record(large(amount="9000")))
    assert [s["message"]["total"] for s in publisher.sent] == ["6000.00"]


def test_cancellations_and_adjustments_are_never_announced():
    big_cancel = event("C536379", lines=[line(1, quantity=-10, unit_price="900")])
    adjustment = event("A563185", lines=[line(1, stock_code="B", quantity=1, unit_price="11062.06")])
    assert big_cancel.total < 0 and adjustment.total > THRESHOLD
    assert not is_large(big_cancel, THRESHOLD) and not is_large(adjustment, THRESHOLD)
    publisher = MemoryPublisher()
    assert notifier(publisher=publisher).handle(record(big_cancel, adjustment)).announced == []
    assert publisher.sent == []


def test_a_failed_publish_records_nothing_and_the_retry_announces_once():
    ledger, publisher = InMemoryLedger(), MemoryPublisher(failures=1)
    n = notifier(ledger, publisher)
    with pytest.raises(TransientError):
        n.handle(record(large()))
    assert ledger.items == {} and publisher.sent == []
    assert n.handle(record(large())).announced == ["536365"]
    assert len(publisher.sent) == 1


def test_a_record_that_fails_after_publishing_is_announced_again_with_the_same_notification_id():
    # the documented window: published, then the ledger write failed; the retry cannot know
    ledger, publisher = FailingLedger(failures=1), MemoryPublisher()
    n = notifier(ledger, publisher)
    with pytest.raises(TransientError):
        n.handle(record(large()))
    n.handle(record(large()))
    n.handle(record(large()))
    assert [s["message"]["notification_id"] for s in publisher.sent] == ["536365", "536365"]


def test_poison_is_quarantined_by_the_notifier_and_its_neighbours_are_announced():
    quarantine, publisher = MemoryQuarantine(), MemoryPublisher()
    (packed,) = aggregate([("1", large().to_json()), ("2", b"not json")], ONE_SHARD)
    result = notifier(publisher=publisher, quarantine=quarantine).handle(
        KinesisRecord("arn:aws:kinesis:eu-west-1:1:stream/s", "4959", "0", packed.data))
    assert result.announced == ["536365"] and result.quarantined == 1
    assert quarantine.messages[0]["source"]["consumer"] == "order-notifier"


def test_the_subject_is_ascii_and_at_most_100_characters():
    text = subject(large(country="Côte d'Ivoire " + "x" * 200))
    assert len(text) <= 100 and text.isascii() and text.endswith("...")


def test_a_threshold_that_is_not_positive_is_refused():
    with pytest.raises(ValueError, match="positive"):
        OrderNotifier(InMemoryLedger(), MemoryPublisher(), MemoryQuarantine(), threshold=Decimal(0))
