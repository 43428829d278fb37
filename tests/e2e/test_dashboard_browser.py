"""The dashboard in a real browser: headless Chromium (Debian's chromium and its
chromedriver, installed by `make browser`) driven by selenium, against the dashboard
served on a free 127.0.0.1 port over a local DuckDB warehouse holding the bundled
sample. What the page shows — the overview, then each country chosen in the select —
is compared with SQL run directly on the warehouse, as text formatted from the exact
decimal values."""
from __future__ import annotations

import os
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest

from devstack.dashboard import Dashboard, DashboardServer, write_static
from tests.fixtures.warehouse_sample import IVORY_COAST, load_sample

pytestmark = pytest.mark.e2e

CHROMIUM = Path(os.environ.get("SHOPSTREAM_CHROMIUM") or "/usr/bin/chromium")
CHROMEDRIVER = Path(os.environ.get("SHOPSTREAM_CHROMEDRIVER") or "/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-background-networking", "--disable-gpu",
                  "--disable-dev-shm-usage", "--no-first-run", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,1000")
WAIT_S = 10  # every wait for the page is bounded by this


# ---- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    warehouse = load_sample(f"duckdb://{tmp_path_factory.mktemp('dashboard-browser') / 'warehouse.duckdb'}")
    yield warehouse
    warehouse.close()


@pytest.fixture(scope="module")
def server(warehouse):
    with DashboardServer(Dashboard(warehouse), port=0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        yield server


@pytest.fixture(scope="module")
def browser():
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not found: the dashboard's browser test needs Debian's chromium and "
                    f"chromium-driver; install them with `make browser`", pytrace=False)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed in this environment; run `make venv`", pytrace=False)
    profile = tempfile.mkdtemp(prefix="shopstream-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # the driver's path given: selenium does not look for (or download) one
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(WAIT_S)
        driver.set_script_timeout(WAIT_S)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# ---- the truth, from SQL on the warehouse ------------------------------------------------------

def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def figures_from_sql(warehouse, country: str | None) -> dict:
    """Units, gross and net sales, invoices and unique customers from the fact, the top 3
    from mv_top_products_by_country, the days from mv_sales_by_country_day."""
    where = "" if country is None else f"WHERE country = {sql_literal(country)}"
    totals = warehouse.execute(
        "SELECT SUM(quantity) AS units, "
        "SUM(CASE WHEN NOT is_cancellation AND NOT is_adjustment THEN amount ELSE 0 END) AS gross_sales, "
        "SUM(amount) AS net_sales, COUNT(DISTINCT invoice_no) AS invoices, "
        f"COUNT(DISTINCT customer_id) AS customers FROM fact_invoice_lines {where}").records()[0]
    days = warehouse.execute(f"SELECT day, SUM(gross_sales), SUM(net_sales) FROM mv_sales_by_country_day {where} "
                             f"GROUP BY day ORDER BY day").rows
    top = [] if country is None else warehouse.execute(
        "SELECT rank, stock_code, description, units, gross_sales, unique_customers FROM mv_top_products_by_country "
        f"{where} AND rank <= 3 ORDER BY rank").records()
    return {"totals": totals, "days": days, "top": top}


def money(value: Decimal) -> str:
    """What the page must show for an amount: £, thousands separators, the exact digits
    (at least two decimals), a minus sign for a negative amount."""
    whole, _, fraction = format(abs(value), "f").partition(".")
    return ("\u2212" if value < 0 else "") + f"£{int(whole):,}." + fraction.rstrip("0").ljust(2, "0")


def count(value) -> str:
    return ("\u2212" if int(value) < 0 else "") + f"{abs(int(value)):,}"


# ---- reading the page ----------------------------------------------------------------------------

READ_PAGE = """
const text = e => e ? e.innerText.trim() : null;
const kpi = id => { const v = document.querySelector('#' + id + ' .value'); return {text: text(v), value: v.dataset.value}; };
return {
  state: document.body.dataset.state, country: document.body.dataset.country,
  error: text(document.getElementById('error')),
  selected: document.getElementById('country').value,
  options: [...document.querySelectorAll('#country option')].map(o => o.value),
  kpis: {units: kpi('kpi-units'), gross_sales: kpi('kpi-gross-sales'), net_sales: kpi('kpi-net-sales'),
         customers: kpi('kpi-customers'), invoices: kpi('kpi-invoices')},
  top: [...document.querySelectorAll('#top-products tbody tr[data-rank]')].map(tr => ({
    rank: tr.dataset.rank, stock_code: tr.dataset.stockCode, code_text: text(tr.querySelector('.code')),
    description: tr.querySelector('[data-field=description]').dataset.value,
    description_text: text(tr.querySelector('[data-field=description]')),
    units: text(tr.querySelector('[data-field=units]')),
    gross_sales: text(tr.querySelector('[data-field=gross_sales]')),
    unique_customers: text(tr.querySelector('[data-field=unique_customers]'))})),
  chart: {days: document.getElementById('daily-chart').dataset.days,
          bars: [...document.querySelectorAll('#daily-chart g.day')].map(g => ({
             day: g.dataset.day, gross: g.dataset.grossSales, net: g.dataset.netSales,
             rects: g.querySelectorAll('rect').length}))},
  overview: [...document.querySelectorAll('#overview tbody tr')].map(tr => ({
    country: tr.dataset.country, selected: tr.classList.contains('selected'),
    cells: Object.fromEntries([...tr.querySelectorAll('td')].map(td => [td.dataset.field, text(td)]))})),
};
"""


def wait_for(driver, country: str) -> dict:
    """The page once it shows ``country`` ('' for the overview), read in one call."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    seen: dict = {}

    def shown(d):
        seen.update(d.execute_script(READ_PAGE))
        if seen["state"] == "error":
            pytest.fail(f"the page shows an error: {seen['error']}", pytrace=False)
        return seen["state"] == "ready" and seen["country"] == country

    try:
        WebDriverWait(driver, WAIT_S, poll_frequency=0.05).until(shown)
    except TimeoutException:
        pytest.fail(f"the page did not show {country or 'the overview'!r} within {WAIT_S}s "
                    f"(state {seen.get('state')!r}, country {seen.get('country')!r})", pytrace=False)
    return seen


def choose(driver, country: str) -> dict:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", "country")).select_by_value(country)
    return wait_for(driver, country)


def assert_shows(page: dict, truth: dict) -> None:
    t = truth["totals"]
    kpis = page["kpis"]
    assert {name: kpis[name]["text"] for name in kpis} == {
        "units": count(t["units"]), "gross_sales": money(t["gross_sales"]), "net_sales": money(t["net_sales"]),
        "customers": count(t["customers"]), "invoices": count(t["invoices"])}
    assert Decimal(kpis["gross_sales"]["value"]) == t["gross_sales"]
    assert Decimal(kpis["net_sales"]["value"]) == t["net_sales"]
    # one bar group (gross and net) per day the country sold on, in order, with the exact amounts
    assert int(page["chart"]["days"]) == len(page["chart"]["bars"]) == len(truth["days"])
    assert [(b["day"], Decimal(b["gross"]), Decimal(b["net"]), b["rects"]) for b in page["chart"]["bars"]] == [
        (day.isoformat(), gross, net, 2) for day, gross, net in truth["days"]]
    assert [(p["rank"], p["stock_code"], p["code_text"], p["description"], p["units"], p["gross_sales"],
             p["unique_customers"]) for p in page["top"]] == [
        (str(r["rank"]), r["stock_code"], r["stock_code"], r["description"], count(r["units"]),
         money(r["gross_sales"]), count(r["unique_customers"])) for r in truth["top"]]
    for p in page["top"]:
        assert p["description_text"].startswith(p["description"].strip())


def assert_no_console_errors(driver) -> None:
    errors = [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
    assert errors == []


# ---- tests ----------------------------------------------------------------------------------------

def test_the_overview_shows_every_country_and_the_totals_of_the_fact(browser, server, warehouse):
    # GIVEN the countries and their net sales, and the fact's totals, from SQL
    countries = dict(warehouse.execute("SELECT country, SUM(net_sales) FROM mv_sales_by_country_day "
                                       "GROUP BY country").rows)
    truth = figures_from_sql(warehouse, None)
    # WHEN the page is opened
    browser.get(server.url)
    page = wait_for(browser, "")
    # THEN the select offers the overview and every country, the tiles and the chart show all countries
    assert page["selected"] == "" and page["options"][0] == "" and sorted(page["options"][1:]) == sorted(countries)
    assert_shows(page, truth)
    # AND the overview table lists every country, largest net sales first, with its net sales
    assert [row["country"] for row in page["overview"]] == sorted(countries, key=lambda c: (-countries[c], c))
    assert {row["country"]: row["cells"]["net_sales"] for row in page["overview"]} == {
        c: money(v) for c, v in countries.items()}
    assert not any(row["selected"] for row in page["overview"])
    assert_no_console_errors(browser)


def test_switching_the_country_shows_its_top_products_figures_and_days(browser, server, warehouse):
    browser.get(server.url)
    wait_for(browser, "")
    # WHEN France, then the United Kingdom, then Côte d'Ivoire are chosen, then the overview again
    for country in ("France", "United Kingdom", IVORY_COAST):
        page = choose(browser, country)
        # THEN each time the top 3, units, gross and net sales, customers, invoices and the days are the country's
        truth = figures_from_sql(warehouse, country)
        assert len(truth["top"]) == 3 and len(truth["days"]) >= 1
        assert_shows(page, truth)
        assert [row["country"] for row in page["overview"] if row["selected"]] == [country]
    page = choose(browser, "")
    assert_shows(page, figures_from_sql(warehouse, None))
    assert page["top"] == []
    assert_no_console_errors(browser)


def test_clicking_a_country_in_the_overview_chooses_it_and_the_address_keeps_it(browser, server, warehouse):
    browser.get(server.url)
    wait_for(browser, "")
    # WHEN EIRE's row of the overview table is clicked
    browser.find_element("css selector", '#overview tbody tr[data-country="EIRE"]').click()
    page = wait_for(browser, "EIRE")
    # THEN the select and the figures are EIRE's
    assert page["selected"] == "EIRE"
    assert_shows(page, figures_from_sql(warehouse, "EIRE"))
    # AND reloading the page's address shows EIRE again
    assert browser.current_url.endswith("#country=EIRE")
    browser.refresh()
    assert_shows(wait_for(browser, "EIRE"), figures_from_sql(warehouse, "EIRE"))


def test_the_static_snapshot_shows_the_same_figures_without_a_server(browser, warehouse, tmp_path):
    # GIVEN a snapshot written from the warehouse (no server runs for it)
    path = write_static(Dashboard(warehouse), tmp_path / "dashboard.html")
    # WHEN it is opened from the file and a country is chosen
    browser.get(path.as_uri())
    overview = wait_for(browser, "")
    page = choose(browser, "United Kingdom")
    # THEN it shows the same figures as the warehouse
    assert_shows(overview, figures_from_sql(warehouse, None))
    assert_shows(page, figures_from_sql(warehouse, "United Kingdom"))
    assert_no_console_errors(browser)
