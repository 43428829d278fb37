-- After each merge, one statement per view: in Redshift each REFRESH runs as a
-- transaction of its own, so these are separate calls, never part of the merge batch.
-- mv_top_products_by_country and mv_customer_summary read dim_products and
-- dim_customers, which the merge keeps current.
REFRESH MATERIALIZED VIEW mv_sales_by_country_day;
REFRESH MATERIALIZED VIEW mv_top_products_by_country;
REFRESH MATERIALIZED VIEW mv_customer_summary;
REFRESH MATERIALIZED VIEW mv_customers_by_country;
