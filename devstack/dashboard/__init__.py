"""``shopstream dashboard``: the sales dashboard (countries, top products, daily revenue),
served by the local stack (local mode only).

Choose a country (or the overview of all) and see its units sold, gross and net sales,
unique customers and invoices, its top 3 products, its daily revenue as a chart, and the
table of all countries — every figure read from the warehouse's materialized views
(``mv_sales_by_country_day``, ``mv_top_products_by_country``, ``mv_customer_summary``).

* :mod:`.queries` — every statement it sends, in Redshift's dialect, in one place;
* :mod:`.data` — :class:`Dashboard`: those statements through a
  :class:`warehouse.loader.StatementExecutor` (the running stack's Redshift Data API via
  ``devstack.stack.warehouse_executor``, or a ``LocalWarehouse`` in tests), turned into
  JSON-ready values with money as exact decimal strings;
* :mod:`.server` — :class:`DashboardServer` (standard library HTTP, 127.0.0.1 only): the
  page and its JSON API; :func:`write_static` writes the page with the data embedded;
* ``page.html`` — the page: HTML, CSS and vanilla JS inline, the chart drawn as inline
  SVG, nothing fetched from the network (its Content-Security-Policy forbids it). It
  formats money from the decimal strings, never through a float.

Why the standard library's server: a few JSON GETs from one person's browser need no
framework, and it starts in milliseconds in tests. The DuckDB warehouse file belongs to
the emulator process (DuckDB lets one process hold it), so the dashboard reads through
the Data API like every other reader.
"""
from devstack.dashboard.data import BadRequest, Dashboard, DashboardError, UnknownCountry, WarehouseUnavailable
from devstack.dashboard.server import DEFAULT_PORT, DashboardServer, page, write_static

__all__ = ["Dashboard", "DashboardServer", "DashboardError", "BadRequest", "UnknownCountry", "WarehouseUnavailable",
           "DEFAULT_PORT", "page", "write_static"]
