"""Versioned invoices in DynamoDB (dynamo_models/repository.py): the newest version wins,
an older one arriving late is skipped, status-less events are written as before. On moto's
in-process DynamoDB, which evaluates condition expressions as DynamoDB does."""
from __future__ import annotations

import pytest
from moto import mock_aws

from dynamo_models.invoice import InvoiceItem, bind_models
from dynamo_models.repository import InvoiceRepository
from tests.factories import event, line


def _transaction(status: str | None, invoice_date: str = "2023-03-15T10:00:00", quantity: int = 2):
    return event("T1001", invoice_date=invoice_date, customer_id="44444", status=status,
                 lines=[line(1, "85123A", quantity=quantity, unit_price="2.55")])


@pytest.fixture
def repository(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    meta = InvoiceItem.Meta
    bound = (meta.table_name, meta.region, getattr(meta, "host", None))
    with mock_aws():
        bind_models("versions-test", "eu-west-1", None)
        InvoiceItem.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
        try:
            yield InvoiceRepository(InvoiceItem, max_attempts=2, sleep=lambda s: None)
        finally:
            bind_models(*bound)  # later tests see the model as it was bound before


def test_a_later_version_replaces_an_earlier_one(repository):
    # GIVEN the pending version stored
    repository.put_invoices([_transaction("pending")])
    # WHEN the completed version of the next day arrives
    completed = _transaction("completed", "2023-03-16T09:00:00", quantity=3)
    assert repository.put_invoices([completed]) == 1
    # THEN it is stored, with its status and version, and the API shows the status
    stored = repository.get_invoice("T1001")
    assert stored.summary.event_id == completed.event_id and stored.lines[0].quantity == 3
    assert stored.to_api()["status"] == "completed"
    assert InvoiceItem.get("T1001", 0).version == completed.version
    assert repository.older_versions_skipped == 0


def test_an_older_version_arriving_late_is_skipped_not_an_error(repository):
    # GIVEN the completed version stored
    completed = _transaction("completed", quantity=3)
    repository.put_invoices([completed])
    # WHEN the pending version of the same date arrives afterwards, then completed is redelivered
    assert repository.put_invoices([_transaction("pending")]) == 0
    assert repository.put_invoices([completed]) == 1
    # THEN completed stays, and the older version was counted once
    assert repository.get_invoice("T1001").summary.event_id == completed.event_id
    assert repository.older_versions_skipped == 1


def test_in_one_call_the_newest_version_wins_whatever_the_order(repository):
    completed = _transaction("completed", quantity=3)
    repository.put_invoices([completed, _transaction("pending")])
    assert repository.get_invoice("T1001").summary.event_id == completed.event_id
    assert repository.older_versions_skipped == 1


def test_status_less_events_are_written_as_before_and_show_no_status(repository):
    plain = _transaction(None)
    assert repository.put_invoices([plain]) == 1
    item = InvoiceItem.get("T1001", 0)
    assert item.status is None and item.version is None
    assert "status" not in repository.get_invoice("T1001").to_api()
