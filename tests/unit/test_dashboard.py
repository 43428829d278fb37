"""The dashboard's SQL and data layer with an in-memory executor: quoting, validation
before any SQL is written, exact values, and warehouse failures as clear errors."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from devstack.dashboard import queries
from devstack.dashboard.data import BadRequest, Dashboard, UnknownCountry, WarehouseUnavailable, json_value
from devstack.dashboard.server import _script_json, page
from pipeline.errors import TransientError
from warehouse.results import Column, Result

COUNTRIES = ["Côte d'Ivoire", "EIRE", "France", "United Kingdom"]


class FakeExecutor:
    """Answers the known-countries query and records every statement it is sent."""

    def __init__(self, countries=COUNTRIES, fail: BaseException | None = None):
        self.countries = countries
        self.fail = fail
        self.sent: list[str] = []

    def execute(self, sql: str) -> Result:
        self.sent.append(sql)
        if self.fail is not None:
            raise self.fail
        if sql == queries.known_countries():
            return Result([Column("country", "varchar")], [(c,) for c in self.countries], len(self.countries))
        return Result([Column("x", "int8")], [], 0)

    def execute_batch(self, sqls):  # pragma: no cover - the dashboard never writes
        raise AssertionError("the dashboard must not write")


@pytest.mark.parametrize("text, expected", [
    ("France", "'France'"),
    ("Côte d'Ivoire", "'Côte d''Ivoire'"),
    ("'; drop table x; --", "'''; drop table x; --'"),
    ("", "''"),
])
def test_literal_quotes_and_doubles_single_quotes(text, expected):
    assert queries.literal(text) == expected


@pytest.mark.parametrize("text", ["a\\b", "a\x00b", "line\nbreak", "tab\t", "del\x7f"])
def test_literal_refuses_what_dialects_read_differently(text):
    with pytest.raises(queries.UnsafeLiteral):
        queries.literal(text)


def test_country_statements_read_only_the_views_and_quote_the_country():
    # WHEN the per-country statements are written for a name with an apostrophe
    statements = [queries.country_totals("Côte d'Ivoire"), queries.daily_revenue("Côte d'Ivoire"),
                  queries.top_products("Côte d'Ivoire")]
    # THEN each reads a view, holds the name as one quoted literal, and the top list is limited to 3
    for sql in statements:
        assert "country = 'Côte d''Ivoire'" in sql
        assert "fact_invoice_lines" not in sql and "mv_" in sql
    assert statements[2].rstrip().endswith("ORDER BY rank\nLIMIT 3")


@pytest.mark.parametrize("limit", [0, -1, 101, "3", True, 2.5])
def test_top_products_refuses_a_limit_that_is_not_a_small_integer(limit):
    with pytest.raises(ValueError):
        queries.top_products("France", limit)


@pytest.mark.parametrize("name", ["Atlantis", "'; drop table x; --", "france", "France ", "France' OR '1'='1"])
def test_an_unknown_country_is_refused_before_any_sql_holds_it(name):
    # GIVEN a warehouse that knows four countries
    executor = FakeExecutor()
    # WHEN a name it does not know exactly is asked for
    with pytest.raises(UnknownCountry) as raised:
        Dashboard(executor).country(name)
    # THEN it is a 404 naming it, and the only statement sent was the list of countries
    assert raised.value.status == 404 and raised.value.to_dict()["country"] == name
    assert executor.sent == [queries.known_countries()]


@pytest.mark.parametrize("name", ["", "   ", None, 42])
def test_an_empty_or_non_text_country_is_a_400(name):
    with pytest.raises(BadRequest):
        Dashboard(FakeExecutor()).country(name)


def test_a_known_country_with_a_backslash_is_a_400_not_sql():
    executor = FakeExecutor(countries=["Back\\slash"])
    with pytest.raises(BadRequest, match="never written into SQL"):
        Dashboard(executor).country("Back\\slash")
    assert executor.sent == [queries.known_countries()]


def test_a_warehouse_failure_is_a_503_with_its_reason():
    # GIVEN a warehouse that fails every statement
    dashboard = Dashboard(FakeExecutor(fail=TransientError("DescribeStatement on cluster-1 throttled or failed: 500")))
    # WHEN the overview is asked for
    with pytest.raises(WarehouseUnavailable) as raised:
        dashboard.overview()
    # THEN it says the warehouse could not answer, and why
    assert raised.value.status == 503
    assert raised.value.message == ("the warehouse could not answer: DescribeStatement on cluster-1 throttled or "
                                    "failed: 500")


def test_a_bug_is_not_disguised_as_a_warehouse_failure():
    with pytest.raises(ZeroDivisionError):
        Dashboard(FakeExecutor(fail=ZeroDivisionError("bug"))).overview()


def test_values_are_json_ready_and_exact():
    assert json_value(Decimal("54615.150000")) == "54615.150000"
    assert json_value(Decimal("1E+3")) == "1000"
    assert json_value(dt.date(2010, 12, 1)) == "2010-12-01"
    assert json_value(7) == 7 and json_value(None) is None and json_value("EIRE") == "EIRE"
    with pytest.raises(TypeError, match="float"):
        json_value(0.1)


def test_the_overview_totals_are_summed_exactly():
    # GIVEN two countries whose sales sum to a value a float would get wrong
    rows = [("A", 1, dt.date(2010, 12, 1), dt.date(2010, 12, 1), 1, 1, 0, 1, 1, Decimal("0.1"), Decimal("0"),
             Decimal("0"), Decimal("0.1"), 1),
            ("B", 1, dt.date(2010, 12, 1), dt.date(2010, 12, 1), 1, 1, 0, 1, 1, Decimal("0.2"), Decimal("0"),
             Decimal("0"), Decimal("0.2"), 1)]
    names = ["country", "days", "first_day", "last_day", "invoices", "orders", "cancellation_invoices", "lines",
             "units", "gross_sales", "cancellations", "adjustments", "net_sales", "customers"]

    class Executor(FakeExecutor):
        def execute(self, sql):
            if sql == queries.country_totals():
                return Result([Column(n, "varchar") for n in names], rows, 2)
            if sql == queries.all_customers():  # one customer bought in both countries
                return Result([Column("customers", "int8")], [(1,)], 1)
            return Result([Column("day", "date")], [], 0)

    # WHEN the overview sums them
    totals = Dashboard(Executor()).overview()["totals"]
    # THEN the sum is exact, and the customer of both countries is one customer
    assert totals["net_sales"] == "0.3" and totals["gross_sales"] == "0.3"
    assert (totals["countries"], totals["customers"], totals["days"]) == (2, 1, 0)


def test_embedded_data_cannot_close_the_script_element():
    # GIVEN data holding an end tag
    text = _script_json({"country": "</script><script>alert(1)</script>"})
    # THEN no '<' is left to end the element, and the page embeds it once
    assert "<" not in text and "\\u003c/script" in text
    assert page({"x": "</script>"}).count("</script>") == page(None).count("</script>")
