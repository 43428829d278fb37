"""POST /events logic: validation, grouping, no half-written invoices (ingest/core.py)."""
from __future__ import annotations

import json

import pytest

from ingest.core import IngestService, InvalidRequest, PayloadTooLarge, parse_body
from tests.factories import event_dict, raw_row


class RecordingProducer:
    def __init__(self):
        self.sent = []

    def send(self, events):
        self.sent.extend(events)


def ingest(body, max_bytes=1_000_000):
    producer = RecordingProducer()
    outcome = IngestService(producer, max_body_bytes=max_bytes).ingest(json.dumps(body) if not isinstance(body, str) else body)
    return outcome, producer.sent


def test_one_event_object_is_accepted():
    outcome, sent = ingest(event_dict())
    assert outcome.status == 202
    assert outcome.body["accepted"] == {"items": 1, "events": 1, "lines": 2}
    assert [e.invoice_no for e in sent] == ["536365"]


def test_raw_rows_of_an_invoice_are_grouped_into_one_event():
    rows = [raw_row(stock_code="85123A"), raw_row(stock_code="71053", unit_price="3.39"), raw_row("536366", stock_code="22633")]
    outcome, sent = ingest(rows)
    assert outcome.status == 202
    assert [(e.invoice_no, len(e.lines)) for e in sent] == [("536365", 2), ("536366", 1)]


def test_invalid_items_are_listed_and_the_valid_ones_accepted():
    bad = event_dict(invoice_no="53 6365")
    outcome, sent = ingest([event_dict(), bad, 7])
    assert outcome.status == 207  # some written: a client resends only the rejected ones
    assert outcome.body["accepted"]["events"] == 1
    assert outcome.body["accepted"]["indexes"] == [0]
    assert [r["index"] for r in outcome.body["rejected"]] == [1, 2]
    assert outcome.body["rejected"][0]["problems"][0]["field"] == "invoice_no"
    assert [e.invoice_no for e in sent] == ["536365"]


def test_an_invoice_with_one_bad_row_is_rejected_whole():
    rows = [raw_row(stock_code="A"), raw_row(stock_code="B", unit_price="abc"), raw_row("536366")]
    outcome, sent = ingest(rows)
    assert [e.invoice_no for e in sent] == ["536366"]
    reasons = {r["index"]: r["problems"][0] for r in outcome.body["rejected"]}
    assert reasons[1]["field"] == "UnitPrice"
    assert "rejected with its invoice" in reasons[0]["reason"]


def test_rows_that_contradict_their_invoice_reject_it_whole():
    rows = [raw_row(stock_code="A"), raw_row(stock_code="B"), raw_row(stock_code="C", customer_id="99999")]
    outcome, sent = ingest(rows)
    assert sent == []
    assert [r["index"] for r in outcome.body["rejected"]] == [0, 1, 2]


def test_repeated_identical_events_are_sent_once_and_different_versions_rejected():
    a = event_dict()
    changed = event_dict(country="France")
    changed.pop("event_id")
    outcome, sent = ingest([a, a, changed])
    assert len(sent) == 1
    assert [r["index"] for r in outcome.body["rejected"]] == [2]


@pytest.mark.parametrize("body, field", [("", "body"), ("{nope", "body"), ("[]", "body"), ("3", "body")])
def test_unusable_bodies(body, field):
    with pytest.raises(InvalidRequest) as exc:
        parse_body(body, max_bytes=100)
    assert exc.value.problem.field == field


def test_oversize_body_is_refused_before_parsing():
    with pytest.raises(PayloadTooLarge, match="limit is 10 bytes"):
        parse_body("[" + " " * 20 + "]", max_bytes=10)


def test_nothing_accepted_is_a_400_without_indexes():
    outcome, sent = ingest([event_dict(invoice_no="53 6365"), 7])
    assert outcome.status == 400 and sent == []
    assert "indexes" not in outcome.body["accepted"]
    assert outcome.body["rejected_total"] == 2
