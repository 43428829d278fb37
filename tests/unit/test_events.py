"""The invoice event contract (pipeline/events.py)."""
from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pytest

from pipeline.errors import InvalidEvent
from pipeline.events import STATUSES, InvoiceEvent, build_event, money_str
from tests.factories import event, event_dict, line


def fields(exc: pytest.ExceptionInfo) -> dict[str, str]:
    return {p.field: p.reason for p in exc.value.problems}


def test_round_trip_keeps_every_value_exactly():
    # GIVEN an event with a description full of JSON-hostile characters and a 3-decimal price
    original = event(lines=[line(1, description='RECORD FRAME 7" SINGLE, £ & "quotes"', unit_price="0.001", quantity=-12)])
    # WHEN it crosses the wire
    back = InvoiceEvent.from_json(original.to_json())
    # THEN nothing changed, money included
    assert back == original
    assert back.lines[0].unit_price == Decimal("0.001")
    assert back.total == Decimal("-0.012")


def test_wire_format_has_the_documented_fields_and_derived_flags():
    data = json.loads(event("C536379", customer_id=None, lines=[line(1, stock_code="D", unit_price="27.50", quantity=-1)]).to_json())
    assert data["schema_version"] == 1 and data["event_type"] == "invoice"
    assert data["customer_id"] is None
    assert data["is_cancellation"] is True and data["is_adjustment"] is False
    assert data["has_non_product_lines"] is True
    assert data["lines"] == [{"line_no": 1, "stock_code": "D", "description": "WHITE HANGING HEART T-LIGHT HOLDER",
                              "quantity": -1, "unit_price": "27.50"}]


def test_event_id_is_deterministic_and_changes_with_the_content():
    a, b = event(), event()
    assert a.event_id == b.event_id and len(a.event_id) == 32
    changed = event(lines=[line(1, unit_price="2.56"), line(2)])
    assert changed.event_id != event(lines=[line(1), line(2)]).event_id
    # equal prices written differently are the same content
    assert event(lines=[line(1, unit_price="2.5")]).event_id == event(lines=[line(1, unit_price="2.50")]).event_id


@pytest.mark.parametrize(
    "value, text",
    [(Decimal("2.55"), "2.55"), (Decimal("2.1"), "2.10"), (Decimal("15"), "15.00"), (Decimal("0.001"), "0.001"),
     (Decimal("1.5E+1"), "15.00"), (Decimal("-11062.06"), "-11062.06"), (Decimal("0"), "0.00"), (Decimal("-0.00"), "0.00")],
)
def test_money_str_is_exact_and_never_uses_exponents(value, text):
    assert money_str(value) == text


def test_json_numbers_are_read_as_decimals_not_floats():
    data = event_dict()
    data["lines"][0]["unit_price"] = Decimal("2.55")  # what json.loads(parse_float=Decimal) yields
    data.pop("event_id")
    assert InvoiceEvent.from_dict(data).lines[0].unit_price == Decimal("2.55")


def test_binary_floats_are_refused():
    data = event_dict()
    data["lines"][0]["unit_price"] = 2.55
    with pytest.raises(InvalidEvent) as exc:
        InvoiceEvent.from_dict(data)
    assert "binary float" in fields(exc)["lines[0].unit_price"]


@pytest.mark.parametrize(
    "mutate, field, reason",
    [
        (lambda d: d.pop("invoice_no"), "invoice_no", "is required"),
        (lambda d: d.update(invoice_no="53 6365"), "invoice_no", "letters, digits"),
        (lambda d: d.update(invoice_date="2010-13-01T08:26:00"), "invoice_date", "ISO 8601"),
        (lambda d: d.update(schema_version=2), "schema_version", "must be 1"),
        (lambda d: d.update(customer_id="17850x"), "customer_id", "digits"),
        (lambda d: d.update(country=""), "country", "must not be empty"),
        (lambda d: d.update(lines=[]), "lines", "at least one line"),
        (lambda d: d.update(lines="nope"), "lines", "must be an array"),
        (lambda d: d["lines"][1].update(quantity="six"), "lines[1].quantity", "integer"),
        (lambda d: d["lines"][1].update(quantity=True), "lines[1].quantity", "boolean"),
        (lambda d: d["lines"][0].update(unit_price="2,55"), "lines[0].unit_price", "decimal number"),
        (lambda d: d["lines"][0].update(unit_price="NaN"), "lines[0].unit_price", "finite"),
        (lambda d: d["lines"][0].update(unit_price="0.0000001"), "lines[0].unit_price", "decimal places"),
        (lambda d: d["lines"][0].pop("stock_code"), "lines[0].stock_code", "is required"),
        (lambda d: d["lines"][1].update(line_no=1), "lines[1].line_no", "duplicates"),
        (lambda d: d["lines"][0].update(colour="red"), "lines[0].colour", "unknown field"),
        (lambda d: d.update(is_cancellation=True), "is_cancellation", "derived"),
        (lambda d: d.update(event_id="0" * 32), "event_id", "digest"),
    ],
)
def test_each_contract_violation_names_its_field(mutate, field, reason):
    data = event_dict()
    mutate(data)
    with pytest.raises(InvalidEvent) as exc:
        InvoiceEvent.from_dict(data)
    assert field in fields(exc), fields(exc)
    assert reason in fields(exc)[field]


def test_every_problem_is_reported_at_once():
    data = event_dict(country=None, invoice_date="yesterday")
    data["lines"][0]["quantity"] = "x"
    with pytest.raises(InvalidEvent) as exc:
        InvoiceEvent.from_dict(data)
    assert {"country", "invoice_date", "lines[0].quantity"} <= set(fields(exc))


def test_a_line_dated_apart_from_its_invoice_keeps_its_own_date():
    data = event_dict()
    data.pop("event_id")
    data["lines"][1]["invoice_date"] = "2010-12-01 08:27"
    parsed = InvoiceEvent.from_dict(data)
    assert parsed.lines[0].invoice_date is None
    assert parsed.lines[1].invoice_date == "2010-12-01T08:27:00"
    data["lines"][1]["invoice_date"] = "2010-12-01T08:25:00"  # earlier than the invoice
    with pytest.raises(InvalidEvent) as exc:
        InvoiceEvent.from_dict(data)
    assert "earliest" in fields(exc)["invoice_date"]


def test_fast_and_full_validation_agree():
    # GIVEN the same lines once in the common shape and once with an extra (valid) date
    data = event_dict()
    data.pop("event_id")
    plain = InvoiceEvent.from_dict(data)
    data["lines"][0]["invoice_date"] = data["invoice_date"]  # forces the full path; equal date is dropped
    assert InvoiceEvent.from_dict(data) == plain


def test_empty_description_becomes_null_but_whitespace_is_kept():
    data = event_dict()
    data.pop("event_id")
    data["lines"][0]["description"] = ""
    data["lines"][1]["description"] = "  "
    parsed = InvoiceEvent.from_dict(data)
    assert parsed.lines[0].description is None
    assert parsed.lines[1].description == "  "


def test_not_an_object():
    with pytest.raises(InvalidEvent) as exc:
        InvoiceEvent.from_json(b"[1,2]")
    assert "JSON object" in str(exc.value)
    with pytest.raises(InvalidEvent) as exc:
        InvoiceEvent.from_json(b"{nope")
    assert "not valid JSON" in str(exc.value)


@pytest.mark.parametrize("value, text", [("9747747.934", "9,747,747.934"), ("150463.3", "150,463.30"),
                                         ("-11062.06", "-11,062.06"), ("15", "15.00")])
def test_money_display_groups_thousands_and_stays_exact(value, text):
    from pipeline.events import money_display

    assert money_display(value) == text


# ---- status and version (sources that deliver several versions of a transaction) --------


def _versioned(status: str | None, invoice_date: str = "2023-03-15T10:00:00") -> InvoiceEvent:
    return build_event("T1001", "17850", "United Kingdom",
                       [("85123A", "HOLDER", 2, Decimal("2.55"), invoice_date)], status=status)


def test_an_event_without_a_status_is_unchanged_on_the_wire():
    # GIVEN an event built without a status
    plain = event()
    # WHEN it is serialised
    wire = plain.to_json()
    # THEN no status key appears, the digest is the pre-status content digest, and the version is empty
    assert b"status" not in wire
    content = ('{"invoice_no":"536365","invoice_date":"2010-12-01T08:26:00","customer_id":"17850",'
               '"country":"United Kingdom","lines":' + plain.lines_json() + "}")
    assert plain.event_id == hashlib.sha256(content.encode()).hexdigest()[:32]
    assert plain.version == "" and plain.status is None
    assert InvoiceEvent.from_json(wire) == plain


def test_a_status_round_trips_and_is_part_of_the_content():
    # GIVEN a completed transaction, its status given in capitals
    done = _versioned("COMPLETED")
    # WHEN it crosses the wire
    back = InvoiceEvent.from_json(done.to_json())
    # THEN the status is kept lowercase, and another status is another event id
    assert json.loads(done.to_json())["status"] == "completed"
    assert back == done and back.status == "completed"
    assert done.event_id != _versioned("pending").event_id != _versioned(None).event_id


@pytest.mark.parametrize("bad", ["shipped", "", 3])
def test_a_status_outside_the_lifecycle_is_refused_naming_the_accepted_values(bad):
    # GIVEN an event whose status is not one of STATUSES
    # WHEN it is read
    with pytest.raises(InvalidEvent) as exc:
        InvoiceEvent.from_dict(event_dict(status=bad))
    # THEN the problem is on status and lists the accepted values
    assert "pending, completed, failed, cancelled, refunded" in fields(exc)["status"]
    with pytest.raises(InvalidEvent):
        _versioned("shipped")


def test_versions_sort_by_date_then_lifecycle_rank():
    # GIVEN versions of one transaction
    pending, completed = _versioned("pending"), _versioned("completed")
    refunded_next_day = _versioned("refunded", "2023-03-16T09:00:00")
    pending_next_day = _versioned("pending", "2023-03-16T09:00:00")
    # THEN the version strings order them: date first, then rank
    assert pending.version == "2023-03-15T10:00:00/0"
    assert completed.version == "2023-03-15T10:00:00/1"
    assert "" < pending.version < completed.version < pending_next_day.version < refunded_next_day.version
    assert [STATUSES.index(s) for s in ("pending", "completed", "failed", "cancelled", "refunded")] == [0, 1, 2, 3, 4]
