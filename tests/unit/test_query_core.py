"""Query API parameter handling and responses (query_api/core.py)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from dynamo_models.repository import InvoiceSummary, Page
from pipeline.errors import BadRequest, NotFound
from query_api.core import QueryService


class FakeReader:
    def __init__(self, pages=None, exists=True):
        self.calls = []
        self.pages = pages or [Page([], None)]
        self.exists = exists

    def get_invoice(self, invoice_no):
        return None

    def customer_invoices(self, customer_id, **kw):
        self.calls.append((customer_id, kw))
        return self.pages.pop(0)

    def customer_exists(self, customer_id):
        return self.exists


def summary(no="536365"):
    return InvoiceSummary(no, "2010-12-01T08:26:00", "17850", "United Kingdom", 2, Decimal("15.3"), False, False, False, "x")


def test_dates_become_inclusive_bounds_and_defaults_apply():
    reader = FakeReader([Page([summary()], "next")])
    body = QueryService(reader).customer_invoices("17850", {"from": "2010-12-01", "to": "2010-12-31"})
    assert reader.calls == [("17850", {"date_from": "2010-12-01T00:00:00", "date_to": "2010-12-31T23:59:59", "limit": 20, "cursor": None})]
    assert body["invoices"][0]["total"] == "15.30" and body["next_cursor"] == "next"


@pytest.mark.parametrize(
    "customer, query, field",
    [("abc", {}, "customer_id"), ("17850", {"limit": "0"}, "limit"), ("17850", {"limit": "many"}, "limit"),
     ("17850", {"limit": "101"}, "limit"), ("17850", {"from": "yesterday"}, "from"),
     ("17850", {"from": "2011-02-01", "to": "2011-01-01"}, "from"), ("17850", {"sort": "asc"}, "sort")],
)
def test_bad_parameters_name_themselves(customer, query, field):
    with pytest.raises(BadRequest) as exc:
        QueryService(FakeReader()).customer_invoices(customer, query)
    assert exc.value.problem.field == field


def test_unknown_customer_is_404_but_an_empty_range_is_not():
    with pytest.raises(NotFound, match="customer 12345 has no invoices"):
        QueryService(FakeReader(exists=False)).customer_invoices("12345", {})
    assert QueryService(FakeReader(exists=True)).customer_invoices("17850", {"from": "2030-01-01"})["invoices"] == []


def test_unknown_and_malformed_invoice_numbers():
    with pytest.raises(NotFound, match="invoice 999999 not found"):
        QueryService(FakeReader()).invoice("999999")
    with pytest.raises(BadRequest) as exc:
        QueryService(FakeReader()).invoice("53 6365")
    assert exc.value.problem.field == "invoice_no"
