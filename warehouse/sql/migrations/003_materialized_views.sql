-- Materialized views the dashboard and Tableau read (006 adds one more). Redshift
-- refuses ORDER BY, LIMIT and OFFSET in a materialized view, and views, temporary
-- tables and user-defined functions in its FROM; window functions and COUNT(DISTINCT)
-- are allowed but make every refresh a full recompute (no incremental refresh), which
-- is what these small aggregates get anyway. No AUTO REFRESH: the loader refreshes each view right after a
-- merge, as its own statement.
--
-- Money: gross_sales is what sale lines billed (neither cancellations nor
-- adjustments; postage and other charges included); cancellations and adjustments are
-- the (signed) amounts of those lines; net_sales = gross_sales + cancellations +
-- adjustments = the sum of every line, which reconciles with the source. units is net
-- too (cancellation quantities are negative).

-- One row per country and day (the invoice's date). invoices counts every invoice of
-- the day (sales, cancellations, adjustments), orders the sale invoices only, so the
-- sum of invoices, lines and net_sales over all rows equals the fact's totals.
CREATE MATERIALIZED VIEW mv_sales_by_country_day
DISTSTYLE EVEN
SORTKEY (country, day)
AUTO REFRESH NO
AS
SELECT
    country,
    CAST(invoice_date AS DATE) AS day,
    COUNT(DISTINCT invoice_no) AS invoices,
    COUNT(DISTINCT CASE WHEN NOT is_cancellation AND NOT is_adjustment THEN invoice_no END) AS orders,
    COUNT(DISTINCT CASE WHEN is_cancellation THEN invoice_no END) AS cancellation_invoices,
    COUNT(*) AS lines,
    CAST(SUM(quantity) AS BIGINT) AS units,
    SUM(CASE WHEN NOT is_cancellation AND NOT is_adjustment THEN amount ELSE 0 END) AS gross_sales,
    SUM(CASE WHEN is_cancellation THEN amount ELSE 0 END) AS cancellations,
    SUM(CASE WHEN is_adjustment THEN amount ELSE 0 END) AS adjustments,
    SUM(amount) AS net_sales,
    COUNT(DISTINCT customer_id) AS customers
FROM fact_invoice_lines
GROUP BY country, CAST(invoice_date AS DATE);

-- Products (is_product only: postage, fees and manual items are not products) per
-- country, ranked 1, 2, 3 ... by net sales (a sale later cancelled does not make a
-- top product), then net units, then stock code so ranks are unique and stable. The
-- dashboard asks: WHERE country = 'France' ORDER BY rank LIMIT 3. description is the
-- product's current one (dim_products). unique_customers counts the known customers
-- who bought it (sale lines).
CREATE MATERIALIZED VIEW mv_top_products_by_country
DISTSTYLE ALL
SORTKEY (country, rank)
AUTO REFRESH NO
AS
SELECT
    country,
    stock_code,
    description,
    units,
    gross_units,
    gross_sales,
    net_sales,
    unique_customers,
    ROW_NUMBER() OVER (PARTITION BY country ORDER BY net_sales DESC, units DESC, stock_code) AS rank
FROM (
    SELECT
        f.country,
        f.stock_code,
        p.description,
        CAST(SUM(f.quantity) AS BIGINT) AS units,
        CAST(SUM(CASE WHEN NOT f.is_cancellation AND NOT f.is_adjustment THEN f.quantity ELSE 0 END) AS BIGINT) AS gross_units,
        SUM(CASE WHEN NOT f.is_cancellation AND NOT f.is_adjustment THEN f.amount ELSE 0 END) AS gross_sales,
        SUM(f.amount) AS net_sales,
        COUNT(DISTINCT CASE WHEN NOT f.is_cancellation AND NOT f.is_adjustment THEN f.customer_id END) AS unique_customers
    FROM fact_invoice_lines f
    JOIN dim_products p ON p.stock_code = f.stock_code
    WHERE f.is_product
    GROUP BY f.country, f.stock_code, p.description
) product_sales;

-- One row per known customer: country, first and last order from dim_customers;
-- invoices / orders / cancellation_invoices as in mv_sales_by_country_day; active_days
-- is the number of day boundaries between the first and the last order (DATEDIFF).
CREATE MATERIALIZED VIEW mv_customer_summary
DISTSTYLE ALL
SORTKEY (customer_id)
AUTO REFRESH NO
AS
SELECT
    f.customer_id,
    c.country,
    COUNT(DISTINCT f.invoice_no) AS invoices,
    COUNT(DISTINCT CASE WHEN NOT f.is_cancellation AND NOT f.is_adjustment THEN f.invoice_no END) AS orders,
    COUNT(DISTINCT CASE WHEN f.is_cancellation THEN f.invoice_no END) AS cancellation_invoices,
    COUNT(*) AS lines,
    CAST(SUM(f.quantity) AS BIGINT) AS units,
    COUNT(DISTINCT CASE WHEN f.is_product THEN f.stock_code END) AS products,
    c.first_order,
    c.last_order,
    DATEDIFF(day, c.first_order, c.last_order) AS active_days,
    SUM(CASE WHEN NOT f.is_cancellation AND NOT f.is_adjustment THEN f.amount ELSE 0 END) AS gross_sales,
    SUM(CASE WHEN f.is_cancellation THEN f.amount ELSE 0 END) AS cancellations,
    SUM(f.amount) AS net_sales
FROM fact_invoice_lines f
JOIN dim_customers c ON c.customer_id = f.customer_id
GROUP BY f.customer_id, c.country, c.first_order, c.last_order;
