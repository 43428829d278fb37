"""What the dashboard shows, read from the warehouse views through a StatementExecutor.

Values leave here JSON-ready and exact: money (numeric) as the decimal string the
warehouse returned (``"54615.150000"``; never through a float), counts as integers,
days as ISO dates.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from devstack.dashboard import queries
from warehouse.results import Result

MONEY = ("gross_sales", "cancellations", "adjustments", "net_sales")
COUNTS = ("days", "invoices", "orders", "cancellation_invoices", "lines", "units", "customers")


class DashboardError(Exception):
    """An answer other than 200: its HTTP status and a message for the person reading it."""

    status = 500

    def __init__(self, message: str, **details: Any):
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.message, "status": self.status, **self.details}


class BadRequest(DashboardError):
    status = 400


class UnknownCountry(DashboardError):
    status = 404

    def __init__(self, country: str, known: list[str]):
        shown = country if len(country) <= 120 else country[:119] + "…"
        super().__init__(f"no country {shown!r} in the warehouse; {len(known)} are known", country=country,
                         known_countries=known)


class WarehouseUnavailable(DashboardError):
    """The warehouse did not answer a query (down, not yet loaded, a statement failed)."""

    status = 503


def _warehouse_errors() -> tuple[type[BaseException], ...]:
    """What an executor raises when the warehouse cannot answer: shopstream's own errors
    (the Data API adapter's), the local engine's, and botocore's untranslated ones."""
    from botocore.exceptions import BotoCoreError, ClientError

    from devstack.warehouse.errors import WarehouseError
    from pipeline.errors import ShopstreamError

    return ShopstreamError, WarehouseError, ClientError, BotoCoreError


def json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):  # no view column is a float; refuse to guess at money
        raise TypeError(f"the warehouse returned a float ({value!r}); the dashboard's figures are exact")
    return value


def _records(result: Result) -> list[dict[str, Any]]:
    return [{name: json_value(value) for name, value in row.items()} for row in result.records()]


class Dashboard:
    """The dashboard's data. ``executor`` is any StatementExecutor: the Data API of the
    running stack (``devstack.stack.warehouse_executor``) or a LocalWarehouse."""

    def __init__(self, executor: Any, *, parallel: int = 3):
        self._executor = executor
        self._errors = _warehouse_errors()
        self._parallel = parallel

    def _query(self, sql: str) -> Result:
        try:
            return self._executor.execute(sql)
        except self._errors as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise WarehouseUnavailable(f"the warehouse could not answer: {reason}") from exc

    def _records(self, *sqls: str) -> list[list[dict[str, Any]]]:
        """Each statement's rows, the statements sent at the same time: through the Data
        API each one waits on its own for its result, so a page's queries overlap."""
        if len(sqls) == 1 or self._parallel <= 1:
            return [_records(self._query(sql)) for sql in sqls]
        with ThreadPoolExecutor(max_workers=min(self._parallel, len(sqls)), thread_name_prefix="dashboard-sql") as pool:
            futures = [pool.submit(self._query, sql) for sql in sqls]
            return [_records(future.result()) for future in futures]

    # ---- what the endpoints return ------------------------------------------------------

    def countries(self) -> list[str]:
        """The countries the views know, in alphabetical order."""
        return [row[0] for row in self._query(queries.known_countries()).rows]

    def overview(self) -> dict[str, Any]:
        """Every country's totals (largest net sales first), their sum, and the daily
        series of all countries together."""
        countries, daily, customers = self._records(queries.country_totals(), queries.daily_revenue(),
                                                    queries.all_customers())
        totals = _sum_totals(countries, daily)
        totals["customers"] = int(customers[0]["customers"]) if customers else 0
        return {"countries": countries, "totals": totals, "daily": daily}

    def country(self, name: Any) -> dict[str, Any]:
        """One country's totals, top products and daily series; UnknownCountry (404) for
        a name the warehouse does not have."""
        return self._details(self.resolve(name))

    def _details(self, country: str) -> dict[str, Any]:
        totals, top, daily = self._records(queries.country_totals(country), queries.top_products(country),
                                           queries.daily_revenue(country))
        if len(totals) != 1:  # it was known a moment ago: the views were rebuilt meanwhile
            raise UnknownCountry(country, self.countries())
        return {"country": country, "totals": totals[0], "top_products": top, "daily": daily}

    def resolve(self, name: Any) -> str:
        """``name`` if it is one of the warehouse's countries (exactly), else UnknownCountry.
        Only a name found here is ever written into SQL."""
        if not isinstance(name, str) or not name.strip():
            raise BadRequest("give a country name, e.g. /api/countries/France")
        known = self.countries()
        if name not in known:
            raise UnknownCountry(name, known)
        return self._writable(name)

    @staticmethod
    def _writable(name: str) -> str:
        try:
            queries.literal(name)
        except queries.UnsafeLiteral as exc:
            raise BadRequest(f"the country name cannot be queried: {exc}") from exc
        return name

    def snapshot(self, *, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Everything the page can show: the overview and every country's details (what
        ``shopstream dashboard --static`` embeds in the page)."""
        overview = self.overview()
        details = {}
        for row in overview["countries"]:
            if progress is not None:
                progress(row["country"])
            details[row["country"]] = self._details(self._writable(row["country"]))
        return {"overview": overview, "countries": details}


def _sum_totals(countries: list[dict[str, Any]], daily: list[dict[str, Any]]) -> dict[str, Any]:
    """All countries' totals, in Decimal for money. Every one of them adds up but
    customers (a customer may have bought in two countries), which the overview counts
    on its own."""
    totals: dict[str, Any] = {"countries": len(countries)}
    for name in COUNTS:
        totals[name] = sum(int(row[name]) for row in countries)
    for name in MONEY:
        totals[name] = json_value(sum((Decimal(row[name]) for row in countries), Decimal(0)))
    totals["days"] = len(daily)  # days on which any country sold, not the sum of each country's days
    totals["first_day"] = daily[0]["day"] if daily else None
    totals["last_day"] = daily[-1]["day"] if daily else None
    return totals
