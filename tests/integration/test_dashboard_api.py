"""`shopstream dashboard`'s JSON API on each local warehouse, holding the bundled sample
(plus a few invoices of countries with awkward names): every figure it serves is
compared with SQL run directly on the views or the fact, and bad or hostile input is
refused without reaching the warehouse as SQL."""
from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import quote

import pytest
import requests

from devstack.dashboard import Dashboard, DashboardServer
from tests.fixtures.warehouse_sample import CHANNEL_ISLANDS, IVORY_COAST, load_sample
from tests.integration.conftest import WAREHOUSE_BACKENDS

TIMEOUT = 10
MONEY = ("gross_sales", "cancellations", "adjustments", "net_sales")


@pytest.fixture(scope="module", params=WAREHOUSE_BACKENDS)
def served(request, tmp_path_factory):
    """(warehouse, base URL): the sample in a warehouse of the backend, its dashboard on a free port."""
    if request.param == "duckdb":
        url = f"duckdb://{tmp_path_factory.mktemp('dashboard') / 'warehouse.duckdb'}"
    else:
        url = request.getfixturevalue("postgres_url")
    warehouse = load_sample(url)
    server = DashboardServer(Dashboard(warehouse), port=0).start()
    yield warehouse, server.url.rstrip("/")
    server.stop()
    warehouse.reset()
    warehouse.close()


def sql_literal(text: str) -> str:  # the test's own quoting, independent of the dashboard's
    return "'" + text.replace("'", "''") + "'"


def get(base: str, path: str, **kwargs) -> requests.Response:
    return requests.get(base + path, timeout=TIMEOUT, **kwargs)


def test_the_overview_gives_every_country_with_its_totals_from_the_daily_view(served):
    warehouse, base = served
    # GIVEN each country's totals summed in SQL on mv_sales_by_country_day
    expected = {row["country"]: row for row in warehouse.execute(
        "SELECT country, COUNT(*) AS days, SUM(invoices) AS invoices, SUM(lines) AS lines, SUM(units) AS units, "
        "SUM(gross_sales) AS gross_sales, SUM(net_sales) AS net_sales "
        "FROM mv_sales_by_country_day GROUP BY country").records()}
    # WHEN the overview is asked for
    response = get(base, "/api/countries")
    # THEN it lists exactly those countries, largest net sales first, each figure equal
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    countries = response.json()["countries"]
    assert sorted(c["country"] for c in countries) == sorted(expected)
    assert [Decimal(c["net_sales"]) for c in countries] == sorted((Decimal(c["net_sales"]) for c in countries),
                                                                   reverse=True)
    for row in countries:
        want = expected[row["country"]]
        assert {k: row[k] for k in ("days", "invoices", "lines", "units")} == {
            k: int(want[k]) for k in ("days", "invoices", "lines", "units")}, row["country"]
        assert (Decimal(row["gross_sales"]), Decimal(row["net_sales"])) == (want["gross_sales"], want["net_sales"])


def test_the_overview_totals_equal_the_fact(served):
    warehouse, base = served
    # GIVEN the totals of every line in the fact
    fact = warehouse.execute(
        "SELECT COUNT(DISTINCT invoice_no) AS invoices, COUNT(*) AS lines, SUM(quantity) AS units, "
        "SUM(CASE WHEN NOT is_cancellation AND NOT is_adjustment THEN amount ELSE 0 END) AS gross_sales, "
        "SUM(amount) AS net_sales, COUNT(DISTINCT customer_id) AS customers, "
        "COUNT(DISTINCT CAST(invoice_date AS DATE)) AS days FROM fact_invoice_lines").records()[0]
    # WHEN the overview is asked for
    overview = get(base, "/api/countries").json()
    totals = overview["totals"]
    # THEN its totals and its daily series add up to the fact, money to the penny
    assert {k: totals[k] for k in ("invoices", "lines", "units", "customers", "days")} == {
        k: int(fact[k]) for k in ("invoices", "lines", "units", "customers", "days")}
    assert (Decimal(totals["gross_sales"]), Decimal(totals["net_sales"])) == (fact["gross_sales"], fact["net_sales"])
    assert len(overview["daily"]) == int(fact["days"])
    assert sum(Decimal(d["net_sales"]) for d in overview["daily"]) == fact["net_sales"]


def test_unique_customers_count_each_customer_once_not_once_per_day(served):
    warehouse, base = served
    # GIVEN the United Kingdom's distinct customers in the fact, and the sum of its daily distinct counts
    country = sql_literal("United Kingdom")
    distinct = warehouse.execute(
        f"SELECT COUNT(DISTINCT customer_id) FROM fact_invoice_lines WHERE country = {country}").scalar()
    summed = warehouse.execute(f"SELECT SUM(customers) FROM mv_sales_by_country_day WHERE country = {country}").scalar()
    assert summed > distinct  # customers who came back on another day: the daily counts do not add up
    # WHEN the overview and the country are asked for
    overview = {c["country"]: c for c in get(base, "/api/countries").json()["countries"]}
    detail = get(base, "/api/countries/United%20Kingdom").json()
    # THEN both count each customer once
    assert overview["United Kingdom"]["customers"] == detail["totals"]["customers"] == distinct


@pytest.mark.parametrize("country", ["France", "United Kingdom", "EIRE", IVORY_COAST, CHANNEL_ISLANDS])
def test_a_country_s_top_products_totals_and_days_equal_sql_on_the_views(served, country):
    warehouse, base = served
    name = sql_literal(country)
    # GIVEN the country's figures in SQL on the views (and its customers in the fact)
    top = warehouse.execute(
        f"SELECT rank, stock_code, description, units, gross_sales, net_sales, unique_customers "
        f"FROM mv_top_products_by_country WHERE country = {name} AND rank <= 3 ORDER BY rank").records()
    totals = warehouse.execute(
        f"SELECT SUM(units) AS units, SUM(gross_sales) AS gross_sales, SUM(net_sales) AS net_sales, "
        f"SUM(invoices) AS invoices FROM mv_sales_by_country_day WHERE country = {name}").records()[0]
    customers = warehouse.execute(
        f"SELECT COUNT(DISTINCT customer_id) FROM fact_invoice_lines WHERE country = {name}").scalar()
    days = warehouse.execute(f"SELECT day, gross_sales, net_sales FROM mv_sales_by_country_day "
                             f"WHERE country = {name} ORDER BY day").rows
    # WHEN the dashboard is asked for the country (percent-encoded UTF-8, as the page sends it)
    response = get(base, "/api/countries/" + quote(country, safe=""))
    # THEN every figure is the same, money exact
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["country"] == country
    assert [(p["rank"], p["stock_code"], p["description"], p["units"], Decimal(p["gross_sales"]),
             Decimal(p["net_sales"]), p["unique_customers"]) for p in body["top_products"]] == [
        (int(r["rank"]), r["stock_code"], r["description"], int(r["units"]), r["gross_sales"], r["net_sales"],
         int(r["unique_customers"])) for r in top]
    assert 1 <= len(body["top_products"]) <= 3
    t = body["totals"]
    assert (t["units"], Decimal(t["gross_sales"]), Decimal(t["net_sales"]), t["invoices"], t["customers"]) == (
        int(totals["units"]), totals["gross_sales"], totals["net_sales"], int(totals["invoices"]), customers)
    assert [(d["day"], Decimal(d["gross_sales"]), Decimal(d["net_sales"])) for d in body["daily"]] == [
        (day.isoformat(), gross, net) for day, gross, net in days]
    assert t["days"] == len(days)


def test_top_products_exclude_non_products_and_follow_the_view_s_ranks(served):
    warehouse, base = served
    # GIVEN a country whose invoices carry postage (POST is not a product)
    postage = warehouse.execute(f"SELECT SUM(amount) FROM fact_invoice_lines WHERE stock_code = 'POST' "
                                f"AND country = {sql_literal(IVORY_COAST)}").scalar()
    assert postage > 0
    # WHEN its details are asked for
    products = get(base, "/api/countries/" + quote(IVORY_COAST)).json()["top_products"]
    # THEN POST is not among them and the ranks are 1, 2, 3 by net sales
    assert [p["rank"] for p in products] == [1, 2, 3]
    assert "POST" not in {p["stock_code"] for p in products}
    nets = [Decimal(p["net_sales"]) for p in products]
    assert nets == sorted(nets, reverse=True)


def test_money_is_served_as_the_warehouse_s_decimal_strings(served):
    warehouse, base = served
    # GIVEN France's gross sales as the warehouse returns it
    expected = warehouse.execute("SELECT SUM(gross_sales) FROM mv_sales_by_country_day WHERE country = 'France'").scalar()
    # WHEN the API serves it
    body = get(base, "/api/countries/France").json()
    # THEN every money field is a decimal string (never a JSON number, which a browser reads as a float)
    for record in [body["totals"], *body["top_products"], *body["daily"]]:
        for field in MONEY:
            if field in record:
                assert isinstance(record[field], str) and re.fullmatch(r"-?\d+(\.\d+)?", record[field]), record
    assert Decimal(body["totals"]["gross_sales"]) == expected
    assert body["totals"]["gross_sales"] == format(expected, "f")


def test_an_unknown_country_is_a_404_naming_it(served):
    _, base = served
    # WHEN a country the warehouse does not hold is asked for
    response = get(base, "/api/countries/Atlantis")
    # THEN the answer is a JSON 404 that names it and lists the known ones
    assert response.status_code == 404
    body = response.json()
    assert "Atlantis" in body["error"] and body["country"] == "Atlantis"
    assert "France" in body["known_countries"] and IVORY_COAST in body["known_countries"]


@pytest.mark.parametrize("hostile", [
    "'; drop table x; --",
    "France'; DROP TABLE fact_invoice_lines; --",
    "France' OR '1'='1",
    "France\\",
    "Fr%ance",
    "France\x00",
    "../../etc/passwd",
    "<script>alert(1)</script>",
])
def test_hostile_country_strings_are_refused_and_change_nothing(served, hostile):
    warehouse, base = served
    # GIVEN the fact's size before
    lines = warehouse.execute("SELECT COUNT(*) FROM fact_invoice_lines").scalar()
    # WHEN a hostile string is asked for as a country (percent-encoded as a browser would)
    response = get(base, "/api/countries/" + quote(hostile, safe=""))
    # THEN it is refused as an unknown country, in JSON, naming it as given
    assert response.status_code == 404, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["country"] == hostile
    # AND the warehouse is untouched and still answers
    assert warehouse.execute("SELECT COUNT(*) FROM fact_invoice_lines").scalar() == lines
    assert get(base, "/api/countries/France").status_code == 200


def test_a_path_that_is_not_percent_encoded_utf8_is_a_400(served):
    _, base = served
    response = get(base, "/api/countries/C%F4te")  # Latin-1 'ô'
    assert response.status_code == 400
    assert "UTF-8" in response.json()["error"]


def test_unknown_paths_other_methods_and_foreign_hosts_get_json_errors(served):
    _, base = served
    # WHEN a path the dashboard does not have, a POST and a request for another host name arrive
    missing = get(base, "/api/products")
    post = requests.post(base + "/api/countries", data=b"x", timeout=TIMEOUT)
    foreign = get(base, "/api/countries", headers={"Host": "dashboard.example.com"})
    # THEN each is a JSON error with a message, never an HTML error page
    assert (missing.status_code, post.status_code, foreign.status_code) == (404, 405, 403)
    for response in (missing, post, foreign):
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json()["error"]
    assert post.headers["Allow"] == "GET"


def test_the_page_needs_nothing_from_the_network(served):
    _, base = served
    # WHEN the page is fetched
    response = get(base, "/")
    html = response.text
    # THEN it is HTML that loads no script, style, font or image from anywhere, and says so in its CSP
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.I)
    assert not re.search(r"@import|url\(", html, re.I)
    assert "default-src 'none'" in html and "connect-src 'self'" in html
    for element in ('id="country"', 'id="kpi-units"', 'id="kpi-gross-sales"', 'id="kpi-customers"',
                    'id="top-products"', 'id="daily-chart"', 'id="overview"'):
        assert element in html


class _FailingExecutor:
    def __init__(self, error: BaseException):
        self.error = error

    def execute(self, sql):
        raise self.error

    def execute_batch(self, sqls):
        raise self.error


def test_a_warehouse_that_cannot_answer_is_a_503_with_its_reason(tmp_path):
    # GIVEN a warehouse without the views (nothing was ever loaded)
    from devstack.warehouse import LocalWarehouse

    with LocalWarehouse.open(f"duckdb://{tmp_path / 'empty.duckdb'}") as empty, \
            DashboardServer(Dashboard(empty), port=0) as server:
        # WHEN the overview is asked for
        response = requests.get(server.url + "api/countries", timeout=TIMEOUT)
    # THEN the answer is a JSON 503 saying the warehouse could not answer, and why
    assert response.status_code == 503
    error = response.json()["error"]
    assert error.startswith("the warehouse could not answer:") and "mv_sales_by_country_day" in error


def test_an_unexpected_failure_is_a_500_json_without_a_stack_trace(capsys):
    # GIVEN an executor with a bug in it
    with DashboardServer(Dashboard(_FailingExecutor(ZeroDivisionError("secret detail"))), port=0) as server:
        # WHEN a country is asked for
        response = requests.get(server.url + "api/countries/France", timeout=TIMEOUT)
    # THEN the client gets a JSON 500 naming no detail, and the traceback goes to the log
    assert response.status_code == 500
    assert response.json() == {"error": "internal error (ZeroDivisionError); see the dashboard's log", "status": 500}
    assert "Traceback" not in response.text and "secret detail" not in response.text
    assert "ZeroDivisionError: secret detail" in capsys.readouterr().err
