"""Hostile input on the invoice path: every input that is not a valid event is a 4xx that
names the problem, found in bounded work, and one poison event never takes its
neighbours down with it. One regression test per case found by trying the API as a
hostile client would (a 310-byte request that cost a minute of CPU, 500s for bodies that
are not UTF-8, lone surrogates, deep nesting, an invoice larger than a Kinesis record, a
poison event that failed its whole KPL aggregate, a tampered cursor read as "retry").

Work is bounded by a guard (``bounded``): it fails a test whose input check runs for
seconds where it should take microseconds. It is a hang guard, not a speed target: the
unfixed checks took 30-77 s; the figures live in ``bench/``.
"""
from __future__ import annotations

import base64
import json
import os
import signal
from contextlib import contextmanager
from decimal import Decimal

import pytest

from consumers.invoices.core import InvoiceWriter
from consumers.records import KinesisRecord
from dynamo_models.repository import decode_cursor, encode_cursor
from firehose.core import OK, PROCESSING_FAILED, SourceRecord, Transformer
from ingest.core import IngestService
from pipeline.codec import aggregate
from pipeline.errors import BadRequest
from pipeline.events import MAX_EVENT_BYTES, InvoiceEvent, normalize_customer_id, parse_price, parse_quantity
from pipeline.partitioning import ShardMap, ShardRange
from query_api.core import parse_limit
from tests.factories import FakeLambdaContext, event, event_dict, http_event, raw_row

GUARD_SECONDS = 10


@contextmanager
def bounded(seconds: int = GUARD_SECONDS):
    def expired(signum, frame):
        raise TimeoutError(f"still working after {seconds} s: an input check does unbounded work")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ---- through the ingest function, as API Gateway calls it -------------------------------------


class RecordingProducer:
    def __init__(self):
        self.sent = []

    def send(self, events):
        for e in events:  # as the real producer does: the wire bytes of each event
            e.to_json()
        self.sent.extend(events)


@pytest.fixture
def post(monkeypatch):
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "shopstream-tests")
    import ingest.handler as handler

    producer = RecordingProducer()
    monkeypatch.setattr(handler, "service", lambda: IngestService(producer, max_body_bytes=5 * 1024 * 1024))

    def call(body: str | bytes, *, raw_event: dict | None = None):
        with bounded():
            response = handler.lambda_handler(raw_event or http_event("POST", "/events", body=body), FakeLambdaContext())
        response["body"].encode("utf-8")  # the gateway must be able to send it
        return response["statusCode"], json.loads(response["body"]), producer.sent

    return call


def _event_text(**overrides) -> str:
    data = event_dict(**overrides)
    data.pop("event_id")
    return json.dumps(data)


def _with(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


def _problems(body: dict) -> list[dict]:
    if "rejected" in body and body["rejected"]:
        return body["rejected"][0]["problems"]
    return body["problems"]


QTY, PRICE, DESC = '"quantity": 6', '"unit_price": "1.25"', '"description": "WHITE HANGING HEART T-LIGHT HOLDER"'

HOSTILE_EVENTS = [
    # (case, body, field named, words in the reason)
    ("quantity 1e1000000 (a minute of CPU before)", lambda: _with(_event_text(), QTY, '"quantity": 1e1000000'),
     "lines[0].quantity", "below"),
    ("price 1e1000000 as a JSON number (decimal overflow before)", lambda: _with(_event_text(), PRICE, '"unit_price": 1e1000000'),
     "lines[0].unit_price", "below"),
    ("price 1e1000000 as text", lambda: _with(_event_text(), PRICE, '"unit_price": "1e1000000"'), "lines[0].unit_price", "below"),
    ("price 1e-1000000", lambda: _with(_event_text(), PRICE, '"unit_price": 1e-1000000'), "lines[0].unit_price", "decimal places"),
    ("price with 51 decimals that normalise away at 28 digits",
     lambda: _with(_event_text(), PRICE, '"unit_price": "1.' + "0" * 50 + '1"'), "lines[0].unit_price", "decimal places"),
    ("customer 1e1000000", lambda: _with(_event_text(customer_id="X"), '"X"', "1e1000000"), "customer_id", "whole customer number"),
    ("lone surrogate in a description", lambda: _with(_event_text(), "HOLDER", "HOLDER\\ud800"),
     "lines[0].description", "lone surrogate"),
    ("lone surrogate as the country", lambda: _event_text(country="X").replace('"X"', '"\\udfff"'), "country", "lone surrogate"),
    ("lone surrogate in a field name", lambda: _with(_event_text(), '"country"', '"\\ud800x": 1, "country"'), "\\ud800x", "unknown field"),
    ("a stock code over 500 characters", lambda: _with(_event_text(), '"20001"', json.dumps("X" * 501)),
     "lines[0].stock_code", "at most 500"),
]

HOSTILE_BODIES = [
    ("the Kaggle file's own ISO-8859-1 bytes", lambda: _event_text().replace("HOLDER", "HOLDER\u00a3").encode("latin-1"),
     "body", "not valid UTF-8: byte 0xa3"),
    ("JSON nested 1,000 levels deep", lambda: "[" * 1000 + "]" * 1000, "body", "nested too deeply"),
    ("JSON nested 100,000 levels deep", lambda: "[" * 100_000 + "]" * 100_000, "body", "nested too deeply"),
    ("a quantity nested 5,000 levels deep", lambda: _with(_event_text(), QTY, '"quantity": ' + "[" * 5000 + "]" * 5000),
     "body", "nested too deeply"),
    ("a number literal of 100,000 digits", lambda: _with(_event_text(), PRICE, '"unit_price": 1.' + "0" * 100_000),
     "body", "number literal of 100,002 characters"),
    ("an integer of 5,000 digits", lambda: _with(_event_text(), QTY, '"quantity": ' + "9" * 5000), "body", "4300 digits"),
]


@pytest.mark.parametrize("case, body, field, reason", HOSTILE_EVENTS, ids=[c[0] for c in HOSTILE_EVENTS])
def test_an_event_that_breaks_the_contract_is_a_400_naming_the_field(post, case, body, field, reason):
    status, answer, sent = post(body())
    assert status == 400 and sent == []
    problem = _problems(answer)[0]
    assert problem["field"] == field and reason in problem["reason"], problem


@pytest.mark.parametrize("case, body, field, reason", HOSTILE_BODIES, ids=[c[0] for c in HOSTILE_BODIES])
def test_a_body_that_cannot_be_read_is_a_400_saying_why(post, case, body, field, reason):
    status, answer, sent = post(body())
    assert status == 400 and sent == []
    assert answer["message"] == "the request body is not usable"
    problem = answer["problems"][0]
    assert problem["field"] == field and reason in problem["reason"], problem


def test_a_body_flagged_base64_that_is_not_is_a_400(post):
    raw = http_event("POST", "/events", body=b"{}")
    raw["body"] = "!!! not base64 !!!"
    status, answer, _ = post(None, raw_event=raw)
    assert status == 400 and "not valid base64" in answer["problems"][0]["reason"]


@pytest.mark.parametrize("column, value, reason", [
    ("UnitPrice", "1e1000000", "below"),
    ("Quantity", "1e1000000", "must be an integer"),
    ("Description", "HOLDER\ud800", "lone surrogate"),
    ("Country", "\udfff", "lone surrogate"),
    ("StockCode", "X" * 501, "at most 500"),
])
def test_a_raw_row_that_breaks_the_contract_is_a_400_naming_the_column(post, column, value, reason):
    status, answer, sent = post(json.dumps([{**raw_row(), column: value}]))
    assert status == 400 and sent == []
    problem = answer["rejected"][0]["problems"][0]
    assert problem["field"] == column and reason in problem["reason"], problem


@pytest.mark.parametrize("column, literal", [("UnitPrice", "1e1000000"), ("Quantity", "1e1000000"), ("CustomerID", "1e1000000")])
def test_a_raw_row_with_a_huge_json_number_is_refused_in_bounded_work(post, column, literal):
    body = json.dumps([{**raw_row(), column: "X"}]).replace('"X"', literal)
    status, answer, _ = post(body)
    assert status == 400 and answer["rejected"][0]["problems"][0]["field"] == column


def test_an_invoice_too_large_for_one_kinesis_record_is_refused_whole_with_its_size(post):
    # 9,000 lines of long descriptions: within the 10,000-line bound, 2.7 MB as an event
    data = event_dict()
    data.pop("event_id")
    data["lines"] = [{"line_no": i, "stock_code": "85123A", "description": "WHITE HANGING HEART T-LIGHT HOLDER " * 5,
                      "quantity": 6, "unit_price": "2.55"} for i in range(1, 9001)]
    small = _event_text(invoice_no="536366")
    status, answer, sent = post(f"[{json.dumps(data)}, {small}]")
    assert status == 207 and [e.invoice_no for e in sent] == ["536366"]
    assert answer["accepted"]["indexes"] == [1]
    problem = answer["rejected"][0]["problems"][0]
    assert answer["rejected"][0]["index"] == 0 and problem["field"] == "lines"
    assert "Kinesis record" in problem["reason"] and f"{MAX_EVENT_BYTES:,}" in problem["reason"]


def test_raw_rows_of_an_invoice_too_large_for_a_record_are_all_rejected(post):
    rows = [{**raw_row(), "StockCode": f"S{i}", "Description": "D" * 400} for i in range(3000)]
    status, answer, sent = post(json.dumps(rows))
    assert status == 400 and sent == []
    assert answer["rejected_total"] == 3000
    assert "Kinesis record" in answer["rejected"][0]["problems"][0]["reason"]


def test_every_spelling_of_a_customer_number_is_the_same_customer(post):
    spellings = ["17850", 17850, "17850.0", "017850", "X"]
    ids = set()
    for spelling in spellings:
        text = _event_text(customer_id="X")
        text = text.replace('"X"', "17850.0" if spelling == "X" else json.dumps(spelling))
        status, _, sent = post(text)
        assert status == 202, spelling
        ids.add((sent[-1].customer_id, sent[-1].event_id))
    status, _, sent = post(json.dumps([{**raw_row(), "CustomerID": "17850.0"}]))
    assert status == 202 and sent[-1].customer_id == "17850"
    assert len(ids) == 1 and next(iter(ids))[0] == "17850"


@pytest.mark.parametrize("value, expected", [
    ("0", "0"), ("000", "0"), ("00017850", "17850"), (Decimal("17850.0"), "17850"), ("1" * 20, "1" * 20),
])
def test_customer_numbers_are_canonical(value, expected):
    assert normalize_customer_id(value) == expected


@pytest.mark.parametrize("value", ["1" * 21, Decimal("17850.5"), Decimal("-1"), -1, "１７８５０", Decimal("NaN"), 2**80])
def test_what_is_not_a_customer_number_is_refused(value):
    assert not isinstance(normalize_customer_id(value), str)


@pytest.mark.parametrize("value", [Decimal("1e1000000"), Decimal("-1e999999999"), Decimal("1e-999999999"), "1e999999",
                                   "9" * 5000, Decimal("Infinity"), Decimal("sNaN")])
def test_numbers_far_out_of_range_are_refused_without_being_converted(value):
    with bounded():
        assert isinstance(parse_quantity(value), str)
        assert isinstance(parse_price(value), str)


# ---- on the stream: a poison event inside a KPL aggregate --------------------------------------

ONE_SHARD = ShardMap([ShardRange("s", 0, 2**128 - 1)])


def _poison() -> list[tuple[str, bytes]]:
    text = event("536366").to_json().decode()
    return [
        ("lone surrogate", text.replace("HOLDER", "HOLDER\\ud800").encode()),
        ("quantity 1e1000000", text.replace('"quantity":6', '"quantity":1e1000000', 1).encode()),
        ("nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000),
        ("not UTF-8", text.replace("HOLDER", "HOLDER\u00a3").encode("latin-1")),
        ("a number literal of 10,000 digits", text.replace('"quantity":6', '"quantity":6.' + "0" * 10_000, 1).encode()),
    ]


class MemoryStore:
    def __init__(self):
        self.invoices = {}

    def put_invoices(self, events):
        self.invoices.update((e.invoice_no, e) for e in events)
        return len(events)


class MemoryQuarantine:
    def __init__(self):
        self.messages = []

    def send(self, **message):
        json.dumps(message["problems"], ensure_ascii=False).encode("utf-8")  # an SQS body must encode
        self.messages.append(message)


def test_poison_events_in_an_aggregate_are_quarantined_alone_and_their_neighbours_written():
    poison = _poison()
    payloads = [event("536365").to_json(), *(data for _, data in poison), event("536367").to_json()]
    (packed,) = aggregate([(str(i), p) for i, p in enumerate(payloads)], ONE_SHARD, max_bytes=900_000)
    store, quarantine = MemoryStore(), MemoryQuarantine()
    record = KinesisRecord("arn:aws:kinesis:eu-west-1:1:stream/s", "4959", "0", packed.data)
    with bounded():
        result = InvoiceWriter(store, quarantine).handle(record)
    assert sorted(store.invoices) == ["536365", "536367"]
    assert result.quarantined == len(poison)
    assert [m["source"]["sub_sequence_number"] for m in quarantine.messages] == list(range(1, len(poison) + 1))
    assert [m["data"] for m in quarantine.messages] == [data for _, data in poison]  # each with its own bytes
    reasons = [m["problems"][0]["reason"] if m["problems"] else m["reason"] for m in quarantine.messages]
    assert "lone surrogate" in reasons[0] and "below" in reasons[1] and "nested too deeply" in reasons[2]
    assert "not valid UTF-8" in reasons[3] and "number literal" in reasons[4]


def test_an_event_that_fails_decoding_unexpectedly_is_quarantined_not_raised(monkeypatch):
    # whatever goes wrong inside the (pure) decoding fails on every retry: it must not fail the record
    real = InvoiceEvent.from_json

    def flaky(raw):
        if b"536366" in raw:
            raise RuntimeError("a decoder bug")
        return real(raw)

    monkeypatch.setattr(InvoiceEvent, "from_json", staticmethod(flaky))
    (packed,) = aggregate([(str(i), event(n).to_json()) for i, n in enumerate(["536365", "536366"])], ONE_SHARD)
    store, quarantine = MemoryStore(), MemoryQuarantine()
    InvoiceWriter(store, quarantine).handle(KinesisRecord("arn", "4959", "0", packed.data))
    assert list(store.invoices) == ["536365"]
    (message,) = quarantine.messages
    assert "RuntimeError: a decoder bug" in message["reason"]


@pytest.mark.parametrize("case, data", _poison(), ids=[c for c, _ in _poison()])
def test_the_firehose_transformation_fails_each_poison_record_alone(case, data):
    transformer = Transformer()
    with bounded():
        outcomes = transformer.transform([SourceRecord("a", event("536365").to_json(), "1"), SourceRecord("b", data, "2")])
    assert [o.result for o in outcomes] == [OK, PROCESSING_FAILED]
    assert outcomes[1].reason


# ---- the query API's parameters ---------------------------------------------------------------

CUSTOMER = "17850"
GOOD_KEY = {"invoice_no": {"S": "536365"}, "part": {"N": "0"}, "customer_id": {"S": CUSTOMER},
            "invoice_sort": {"S": "2010-12-01T08:26:00#536365"}}


def _cursor(key) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def test_a_cursor_this_api_issued_is_read_back():
    assert decode_cursor(encode_cursor(GOOD_KEY), CUSTOMER) == GOOD_KEY


@pytest.mark.parametrize("tamper", [
    {"part": {"S": "0"}},  # DynamoDB would refuse the type: a ValidationException that read as "retry"
    {"part": {"N": "zero"}},
    {"part": {"N": "0", "S": "0"}},
    {"invoice_no": {"S": "53 6365"}},
    {"invoice_no": {"S": "536366"}},  # the sort key names another invoice
    {"invoice_sort": {"S": "anything"}},
    {"invoice_sort": {"N": "1"}},
    {"customer_id": {"N": CUSTOMER}},
    {"extra": {"S": "x"}},
])
def test_a_tampered_cursor_is_a_400(tamper):
    with pytest.raises(BadRequest) as caught:
        decode_cursor(_cursor({**GOOD_KEY, **tamper}), CUSTOMER)
    assert caught.value.problem.field == "cursor"


@pytest.mark.parametrize("cursor", ["garbage", "é" * 10, _cursor([1]), _cursor("x"),
                                    base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode(),
                                    base64.urlsafe_b64encode(b"\xff\xfe").decode()])
def test_a_cursor_that_is_not_one_is_a_400(cursor):
    with pytest.raises(BadRequest):
        decode_cursor(cursor, CUSTOMER)


def test_a_cursor_of_another_listing_is_a_400_saying_so():
    with pytest.raises(BadRequest, match="another customer"):
        decode_cursor(_cursor(GOOD_KEY), "12346")
    with pytest.raises(BadRequest, match="other dates"):
        decode_cursor(_cursor(GOOD_KEY), CUSTOMER, "2011-01-01T00:00:00", "9999")


@pytest.mark.parametrize("value", ["１０", "1_0", " 10", "+10", "10.0", "9" * 5000])
def test_a_limit_is_plain_digits(value):
    with pytest.raises(BadRequest):
        parse_limit(value)
