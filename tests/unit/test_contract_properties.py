"""Properties of the event contract over generated input (hypothesis): whatever a client
sends, ``POST /events`` answers a 4xx naming the problem or accepts it, never raises; a
valid event survives its wire format unchanged; the KPL codec gives back what it packed.

Bounded: a fixed number of examples per property, no deadline (speed is the benchmarks'
business, not the tests').
"""
from __future__ import annotations

import json
import os
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest.core import IngestService
from pipeline.codec import aggregate, deaggregate
from pipeline.errors import InvalidEvent
from pipeline.events import InvoiceEvent, InvoiceLine
from pipeline.partitioning import ShardMap, ShardRange, hash_key
from tests.factories import FakeLambdaContext, event_dict, http_event, raw_row

EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# text as hostile clients send it: any code point, lone surrogates included
any_text = st.text(st.characters(exclude_categories=()), max_size=40)  # Cs (surrogates) included
json_leaf = st.one_of(
    st.none(), st.booleans(), any_text,
    st.integers(min_value=-(10**30), max_value=10**30),
    st.decimals(allow_nan=False, allow_infinity=False, places=None),
    st.sampled_from([Decimal("1e1000000"), Decimal("-1e999999"), Decimal("1e-999999"), 10**4000, "1e1000000", "\ud800", ""]),
)
json_value = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)),
                          max_leaves=12)

EVENT_FIELDS = ["schema_version", "event_type", "event_id", "invoice_no", "invoice_date", "customer_id", "country",
                "is_cancellation", "is_adjustment", "has_non_product_lines", "lines"]
LINE_FIELDS = ["line_no", "stock_code", "description", "quantity", "unit_price", "invoice_date"]


def _dumps(value) -> str:
    return json.dumps(value, default=lambda d: format(d, "f") if abs(d.adjusted()) < 50 else str(d))


def _base_event() -> dict:
    """A valid event without its derived fields, so a changed field is judged on its own."""
    data = event_dict()
    for derived in ("event_id", "is_cancellation", "is_adjustment", "has_non_product_lines"):
        data.pop(derived)
    return data


class RecordingProducer:
    def __init__(self):
        self.sent = []

    def send(self, events):
        for e in events:
            e.to_json()
        self.sent.extend(events)


@pytest.fixture(scope="module")
def post():
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "shopstream-tests")
    import ingest.handler as handler

    producer = RecordingProducer()
    original = handler.service
    handler.service = lambda: IngestService(producer, max_body_bytes=5 * 1024 * 1024)

    def call(body):
        response = handler.lambda_handler(http_event("POST", "/events", body=body), FakeLambdaContext())
        response["body"].encode("utf-8")  # sendable
        answer = json.loads(response["body"])
        assert response["statusCode"] in (202, 207, 400, 413), answer
        if response["statusCode"] in (207, 400) and "rejected" in answer:
            for rejection in answer["rejected"]:
                assert rejection["problems"] and all(p["field"] is not None and p["reason"] for p in rejection["problems"])
        return response["statusCode"], answer

    yield call
    handler.service = original


@EXAMPLES
@given(field=st.sampled_from(EVENT_FIELDS), value=json_value)
@example(field="country", value="\ud800")  # the cases found by hand, always among the examples
@example(field="customer_id", value=Decimal("1e1000000"))
@example(field="lines", value=[[[[[]]]]])
def test_any_value_in_any_event_field_is_answered_never_raised(post, field, value):
    data = _base_event()
    data[field] = value
    post(_dumps(data))


@EXAMPLES
@given(field=st.sampled_from(LINE_FIELDS), value=json_value, extra=st.booleans())
@example(field="description", value="\udfff", extra=False)
@example(field="unit_price", value=Decimal("1e1000000"), extra=True)
@example(field="quantity", value=Decimal("1e1000000"), extra=False)
def test_any_value_in_any_line_field_is_answered_never_raised(post, field, value, extra):
    data = _base_event()
    data["lines"][0][field] = value
    if extra:
        data["lines"][1][field] = value
    post(_dumps(data))


@EXAMPLES
@given(column=st.sampled_from(list(raw_row())), value=json_value)
def test_any_value_in_any_raw_row_column_is_answered_never_raised(post, column, value):
    post(_dumps([{**raw_row(), column: value}, raw_row(stock_code="22633")]))


@EXAMPLES
@given(body=st.one_of(st.binary(max_size=300), any_text.map(lambda t: t.encode("utf-8", "surrogatepass")), json_value.map(_dumps)))
def test_any_body_is_answered_never_raised(post, body):
    post(body)


# ---- the wire format and the codec ------------------------------------------------------------

valid_text = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30).filter(lambda t: t.strip())
valid_lines = st.lists(
    st.builds(lambda code, desc, qty, price: (code, desc, qty, price),
              valid_text, st.none() | valid_text,
              st.integers(min_value=-(10**9) + 1, max_value=10**9 - 1),
              st.decimals(min_value=Decimal("-999999999"), max_value=Decimal("999999999"), places=3, allow_nan=False)),
    min_size=1, max_size=20,
)


@st.composite
def valid_events(draw) -> InvoiceEvent:
    lines = draw(valid_lines)
    return InvoiceEvent(
        invoice_no=draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}", fullmatch=True)),
        invoice_date=draw(st.datetimes(min_value=datetime(1000, 1, 1)).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S"))),
        customer_id=draw(st.none() | st.integers(min_value=0, max_value=10**20 - 1).map(str)),
        country=draw(valid_text),
        lines=tuple(InvoiceLine(i, code, desc, qty, price) for i, (code, desc, qty, price) in enumerate(lines, 1)),
    )


@EXAMPLES
@given(event=valid_events())
def test_a_valid_event_survives_its_wire_format(event):
    wire = event.to_json()
    back = InvoiceEvent.from_json(wire)
    assert back == event and back.event_id == event.event_id and back.to_json() == wire
    assert back.total == event.total  # exact money


@EXAMPLES
@given(events=st.lists(valid_events(), min_size=1, max_size=30), poison=st.lists(st.binary(max_size=200), max_size=3))
def test_kpl_aggregation_gives_back_every_record_in_order(events, poison):
    shard_map = ShardMap([ShardRange("a", 0, 2**127 - 1), ShardRange("b", 2**127, 2**128 - 1)])
    records = [(e.partition_key, e.to_json()) for e in events] + [(f"p{i}", p) for i, p in enumerate(poison)]
    packed = aggregate(records, shard_map)
    unpacked = [(u.partition_key, u.data) for record in packed for u in deaggregate(record.data)]
    assert sorted(unpacked) == sorted(records)
    for shard in ("a", "b"):  # order kept within a shard
        sent = [r for r in records if shard_map.shard_for(hash_key(r[0])).shard_id == shard]
        got = [(u.partition_key, u.data) for record in packed if record.shard_id == shard for u in deaggregate(record.data)]
        assert got == sent
    for _, data in records[len(events):]:  # random bytes: an InvalidEvent, never another exception
        try:
            InvoiceEvent.from_json(data)
        except InvalidEvent as exc:
            assert exc.problems


# ---- the Kaggle reader -----------------------------------------------------------------------
KAGGLE_COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
file_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=24)  # a file holds no lone surrogates
plausible_row = st.tuples(
    st.sampled_from(["536365", "536366", "C536379", "A563185", "581587"]),
    st.sampled_from(["85123A", "POST", "22423", "M"]),
    st.one_of(st.none(), file_text),
    st.sampled_from(["6", "-1", "0", "80995", "1e1000000", "2.5", "", "1" * 70]),
    st.sampled_from(["12/1/2010 8:26", "2010-12-01 08:26:00", "13/45/2010 99:99", ""]),
    st.sampled_from(["2.55", "0", "-11062.06", "1e999999", "NaN", "£2", "9" * 4300]),
    st.sampled_from(["17850", "17850.0", "", "0", "abc"]),
    st.sampled_from(["United Kingdom", "France", "", "EIRE"]),
).map(lambda row: ["" if v is None else v for v in row])
any_row = st.lists(file_text, min_size=0, max_size=10)


@EXAMPLES
@given(rows=st.lists(st.one_of(plausible_row, any_row), max_size=30), encoding=st.sampled_from(["utf-8", "iso-8859-1"]),
       garbage=st.binary(max_size=40))
def test_the_kaggle_reader_accounts_for_every_row_and_never_raises(rows, encoding, garbage):
    import csv
    import io
    import tempfile

    from pipeline.kaggle import InvoiceGrouper, read_invoices

    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(KAGGLE_COLUMNS)
    writer.writerows(rows)
    data = text.getvalue().encode(encoding, errors="replace") + garbage  # bytes of any kind at the end
    with tempfile.NamedTemporaryFile(suffix=".csv") as fh:
        fh.write(data)
        fh.flush()
        grouper = InvoiceGrouper()
        events = list(read_invoices(fh.name, grouper))  # raises nothing: the header is right
    # every data row read is a line of an event or a row error naming its line
    assert sum(len(e.lines) for e in events) + len(grouper.errors) == grouper.rows_read
    if not garbage:  # and every non-empty row written was read
        assert grouper.rows_read == sum(1 for row in rows if row)
    for error in grouper.errors:
        assert error.line >= 2 and error.reason
    for event in events:  # and every event it made is valid on the wire
        assert InvoiceEvent.from_json(event.to_json()) == event
