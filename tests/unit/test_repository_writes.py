"""BatchWriteItem handling: unprocessed items retried with backoff, bounded (dynamo_models/repository.py)."""
from __future__ import annotations

import pytest
from pynamodb.exceptions import PutError

from dynamo_models.invoice import InvoiceItem
from dynamo_models.repository import InvoiceRepository
from pipeline.errors import ConfigurationError, TransientError
from tests.factories import event


class FakeConnection:
    """Leaves the first ``unprocessed`` items of each of the first ``times`` calls unprocessed."""

    def __init__(self, unprocessed: int = 0, times: int = 0, error: Exception | None = None):
        self.unprocessed, self.times, self.error = unprocessed, times, error
        self.calls: list[list[dict]] = []
        self.stored: dict[str, dict] = {}

    def batch_write_item(self, put_items):
        assert len(put_items) <= 25
        keys = [(i["invoice_no"]["S"], i["part"]["N"]) for i in put_items]
        assert len(keys) == len(set(keys)), "a BatchWriteItem request must not repeat a key"
        self.calls.append(put_items)
        if self.error:
            raise self.error
        left = put_items[: self.unprocessed] if len(self.calls) <= self.times else []
        for item in put_items[len(left):]:
            self.stored[item["invoice_no"]["S"]] = item
        return {"UnprocessedItems": {InvoiceItem.Meta.table_name: [{"PutRequest": {"Item": i}} for i in left]} if left else {}}


@pytest.fixture
def connection(monkeypatch):
    holder = {}
    monkeypatch.setattr(InvoiceItem, "_get_connection", classmethod(lambda cls: holder["c"]))
    return holder


def repository(sleeps):
    return InvoiceRepository(InvoiceItem, max_attempts=4, sleep=sleeps.append)


def test_unprocessed_items_are_resent_alone_with_growing_backoff(connection):
    connection["c"] = fake = FakeConnection(unprocessed=3, times=2)
    sleeps = []
    assert repository(sleeps).put_invoices([event(str(600000 + i)) for i in range(30)]) == 30
    assert [len(c) for c in fake.calls] == [25, 3, 3, 5]
    assert len(fake.stored) == 30
    assert len(sleeps) == 2 and sleeps[0] <= sleeps[1] * 2


def test_still_unprocessed_after_the_last_attempt_is_transient(connection):
    connection["c"] = FakeConnection(unprocessed=1, times=99)
    with pytest.raises(TransientError, match="still unprocessed"):
        repository([]).put_invoices([event()])


def test_the_last_version_of_an_invoice_in_one_call_wins_and_keys_never_repeat(connection):
    connection["c"] = fake = FakeConnection()
    repository([]).put_invoices([event(country="France"), event(country="Spain")])
    assert fake.stored["536365"]["country"] == {"S": "Spain"}


def test_errors_are_translated_at_the_edge(connection):
    missing = PutError("no table")
    missing.cause = type("E", (), {"response": {"Error": {"Code": "ResourceNotFoundException"}}})()
    connection["c"] = FakeConnection(error=missing)
    with pytest.raises(ConfigurationError, match="does not exist"):
        repository([]).put_invoices([event()])
    connection["c"] = FakeConnection(error=PutError("throttled"))
    with pytest.raises(TransientError):
        repository([]).put_invoices([event()])


def test_a_validation_error_is_a_refusal_raised_at_once_not_retried(connection):
    from pipeline.errors import RejectedWrite

    refused = PutError("item too large")
    refused.cause = type("E", (), {"response": {"Error": {"Code": "ValidationException",
                                                          "Message": "Item size has exceeded the maximum"}}})()
    connection["c"] = fake = FakeConnection(error=refused)
    sleeps = []
    with pytest.raises(RejectedWrite, match="ValidationException: Item size has exceeded the maximum"):
        repository(sleeps).put_invoices([event()])
    assert len(fake.calls) == 1 and sleeps == []
