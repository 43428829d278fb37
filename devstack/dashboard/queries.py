"""Every statement the dashboard sends to the warehouse, in Redshift's dialect.

They read only the materialized views of ``warehouse/sql/migrations/`` and go through a
:class:`warehouse.loader.StatementExecutor`, so they run as written on
Redshift (the Data API) and, translated, on the local DuckDB or PostgreSQL warehouse.

What each figure means (see ``warehouse/sql/README.md``): ``gross_sales`` is what sale
lines billed, ``net_sales`` every line (cancellations and adjustments included),
``units`` is net. Every figure of ``mv_sales_by_country_day`` except its ``customers``
adds up over days and countries; a count of distinct customers does not (a customer who
bought on three days is one customer, not three), so a country's ``customers`` comes
from ``mv_customers_by_country`` (everyone with a line there), and all countries'
together from ``mv_customer_summary`` (one row per customer): a customer who bought in
two countries counts in each, and once in the total.

Sums of integer columns are cast to BIGINT: Redshift's SUM of a BIGINT is NUMERIC,
DuckDB's a HUGEINT.

The Data API's ExecuteStatement takes SQL text (the executor protocol has no
parameters), so the only value a statement takes from outside, a country, is written as
a string literal by :func:`literal`, and only after the caller has found it in the
warehouse's own list of countries.
"""
from __future__ import annotations

TOP_PRODUCTS_LIMIT = 3


class UnsafeLiteral(ValueError):
    """A value that is not written into SQL at all (a backslash, a control character)."""


def literal(text: str) -> str:
    """``text`` as a Redshift string literal: in single quotes, each quote doubled.

    Backslashes and control characters are refused rather than escaped: Redshift reads
    a backslash in a literal as an escape, DuckDB and PostgreSQL as a plain character,
    so no one spelling means the same on all three."""
    bad = sorted({repr(ch) for ch in text if ch == "\\" or ord(ch) < 0x20 or ord(ch) == 0x7F})
    if bad:
        raise UnsafeLiteral(f"{text!r} holds {', '.join(bad)}, which is never written into SQL")
    return "'" + text.replace("'", "''") + "'"


def _where_country(country: str | None) -> str:
    return "" if country is None else f"WHERE country = {literal(country)}"


def known_countries() -> str:
    """Every country the views know, one row each."""
    return "SELECT DISTINCT country FROM mv_sales_by_country_day ORDER BY country"


def country_totals(country: str | None = None) -> str:
    """One row per country (or only ``country``'s): its days and its totals over them,
    largest net sales first."""
    where = _where_country(country)
    return f"""
SELECT
    s.country,
    s.days,
    s.first_day,
    s.last_day,
    s.invoices,
    s.orders,
    s.cancellation_invoices,
    s.lines,
    s.units,
    s.gross_sales,
    s.cancellations,
    s.adjustments,
    s.net_sales,
    CAST(COALESCE(c.customers, 0) AS BIGINT) AS customers
FROM (
    SELECT
        country,
        CAST(COUNT(*) AS BIGINT) AS days,
        MIN(day) AS first_day,
        MAX(day) AS last_day,
        CAST(SUM(invoices) AS BIGINT) AS invoices,
        CAST(SUM(orders) AS BIGINT) AS orders,
        CAST(SUM(cancellation_invoices) AS BIGINT) AS cancellation_invoices,
        CAST(SUM(lines) AS BIGINT) AS lines,
        CAST(SUM(units) AS BIGINT) AS units,
        SUM(gross_sales) AS gross_sales,
        SUM(cancellations) AS cancellations,
        SUM(adjustments) AS adjustments,
        SUM(net_sales) AS net_sales
    FROM mv_sales_by_country_day
    {where}
    GROUP BY country
) s
LEFT JOIN (
    SELECT country, customers
    FROM mv_customers_by_country
    {where}
) c ON c.country = s.country
ORDER BY s.net_sales DESC, s.country
""".strip()


def all_customers() -> str:
    """The known customers of every country together, each once (a customer who bought
    in two countries is one customer)."""
    return "SELECT CAST(COUNT(*) AS BIGINT) AS customers FROM mv_customer_summary"


def daily_revenue(country: str | None = None) -> str:
    """One row per day, of ``country`` or of all countries together: invoices, orders,
    units, gross and net sales."""
    return f"""
SELECT
    day,
    CAST(SUM(invoices) AS BIGINT) AS invoices,
    CAST(SUM(orders) AS BIGINT) AS orders,
    CAST(SUM(units) AS BIGINT) AS units,
    SUM(gross_sales) AS gross_sales,
    SUM(net_sales) AS net_sales
FROM mv_sales_by_country_day
{_where_country(country)}
GROUP BY day
ORDER BY day
""".strip()


def top_products(country: str, limit: int = TOP_PRODUCTS_LIMIT) -> str:
    """``country``'s best products by net sales (the view ranks them 1, 2, 3 … without ties)."""
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 100:
        raise ValueError(f"limit must be an integer from 1 to 100, not {limit!r}")
    return f"""
SELECT rank, stock_code, description, units, gross_units, gross_sales, net_sales, unique_customers
FROM mv_top_products_by_country
WHERE country = {literal(country)}
ORDER BY rank
LIMIT {limit}
""".strip()
