-- The known customers of each country: everyone who has a line there (a customer who
-- bought in two countries counts in both; mv_customer_summary holds each customer once,
-- under the country of their latest invoice). What the dashboard shows as a country's
-- unique customers.
CREATE MATERIALIZED VIEW mv_customers_by_country
DISTSTYLE ALL
SORTKEY (country)
AUTO REFRESH NO
AS
SELECT
    f.country,
    COUNT(DISTINCT f.customer_id) AS customers
FROM fact_invoice_lines f
WHERE f.customer_id IS NOT NULL
GROUP BY f.country;
