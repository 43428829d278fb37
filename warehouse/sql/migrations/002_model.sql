-- The model the merge maintains: one fact row per invoice line, three dimensions and
-- the record of each merge. Semantics (gross/net, non-products, merge rules) are in
-- warehouse/sql/README.md.

-- Every line of every invoice, exactly once, keyed by (invoice_no, line_no): sales,
-- cancellations (C invoices, negative quantities), adjustments (A invoices) and
-- non-product lines (postage, fees, manual items: is_product false) alike, so the fact
-- reconciles to the penny with the source. event_id and source_sequence are the
-- version of the invoice the lines come from: all lines of an invoice always carry the
-- same pair, because a newer version replaces all of them.
-- PRIMARY KEY is informational in Redshift (the merge guarantees it); the local engines
-- enforce it, which is how a merge bug would show locally.
CREATE TABLE fact_invoice_lines (
    invoice_no       VARCHAR(40)    NOT NULL ENCODE zstd,
    line_no          INTEGER        NOT NULL ENCODE az64,
    invoice_date     TIMESTAMP      NOT NULL ENCODE az64,
    customer_id      VARCHAR(20)             ENCODE zstd,
    country          VARCHAR(2000)  NOT NULL ENCODE zstd,
    stock_code       VARCHAR(2000)  NOT NULL ENCODE zstd,
    description      VARCHAR(2000)           ENCODE zstd,
    quantity         INTEGER        NOT NULL ENCODE az64,
    unit_price       DECIMAL(15,6)  NOT NULL ENCODE az64,
    amount           DECIMAL(24,6)  NOT NULL ENCODE az64,
    size_class       VARCHAR(6)     NOT NULL ENCODE zstd,
    is_cancellation  BOOLEAN        NOT NULL ENCODE raw,
    is_adjustment    BOOLEAN        NOT NULL ENCODE raw,
    is_product       BOOLEAN        NOT NULL ENCODE raw,
    event_id         VARCHAR(32)    NOT NULL ENCODE zstd,
    source_sequence  VARCHAR(143)   NOT NULL ENCODE zstd,
    arrived_at       TIMESTAMP      NOT NULL ENCODE az64,
    merged_at        TIMESTAMP      NOT NULL ENCODE az64,
    PRIMARY KEY (invoice_no, line_no)
)
DISTSTYLE KEY
DISTKEY (invoice_no)
COMPOUND SORTKEY (invoice_date, invoice_no);

-- One row per stock code in the fact. description and unit_price are those of the
-- code's latest sale line (neither a cancellation nor an adjustment) with a description
-- and a positive price -- the price list as it stands -- or, when it has no such line,
-- of its latest line.
-- is_product is false for the non-product codes (pipeline.events.NON_PRODUCT_STOCK_CODES).
CREATE TABLE dim_products (
    stock_code          VARCHAR(2000)  NOT NULL ENCODE zstd,
    description         VARCHAR(2000)           ENCODE zstd,
    unit_price          DECIMAL(15,6)           ENCODE az64,
    is_product          BOOLEAN        NOT NULL ENCODE raw,
    first_invoice_date  TIMESTAMP      NOT NULL ENCODE az64,
    last_invoice_date   TIMESTAMP      NOT NULL ENCODE az64,
    PRIMARY KEY (stock_code)
)
DISTSTYLE ALL
SORTKEY (stock_code);

-- One row per known customer (lines without a customer have none). country is that of
-- the customer's latest invoice (a few customers appear under two countries);
-- first_order / last_order are the dates of their first and last sale invoice (not a
-- cancellation), NULL for a customer the fact holds only cancellations of.
CREATE TABLE dim_customers (
    customer_id  VARCHAR(20)    NOT NULL ENCODE zstd,
    country      VARCHAR(2000)  NOT NULL ENCODE zstd,
    first_order  TIMESTAMP               ENCODE az64,
    last_order   TIMESTAMP               ENCODE az64,
    PRIMARY KEY (customer_id)
)
DISTSTYLE ALL
SORTKEY (customer_id);

-- A calendar of the dates the fact has lines on (the merge adds a date when its first
-- line arrives and removes it when its last line goes). Built from the fact, not from
-- generate_series, which is a leader-node-only function in Redshift and cannot feed an
-- INSERT. day_of_week: 0 = Sunday .. 6 = Saturday; iso_week: ISO 8601 week number.
CREATE TABLE dim_date (
    calendar_date  DATE         NOT NULL,
    year           SMALLINT     NOT NULL,
    quarter        SMALLINT     NOT NULL,
    month          SMALLINT     NOT NULL,
    month_name     VARCHAR(9)   NOT NULL,
    day_of_month   SMALLINT     NOT NULL,
    day_of_week    SMALLINT     NOT NULL,
    day_name       VARCHAR(9)   NOT NULL,
    iso_week       SMALLINT     NOT NULL,
    is_weekend     BOOLEAN      NOT NULL,
    PRIMARY KEY (calendar_date)
)
DISTSTYLE ALL
SORTKEY (calendar_date);

-- What each merge did, written inside the merge's own transaction (so a merge is
-- recorded if and only if it committed); the loader reads its run back by run_id.
-- Counts are taken before the fact changes: staged rows and invoices seen, invoices
-- inserted (new) and replaced (a newer version), fact lines inserted, updated and
-- deleted (lines a newer version no longer has).
CREATE TABLE shopstream_merge_runs (
    run_id             VARCHAR(32)  NOT NULL,
    merged_at          TIMESTAMP    NOT NULL,
    staged_rows        BIGINT       NOT NULL,
    staged_invoices    BIGINT       NOT NULL,
    invoices_inserted  BIGINT       NOT NULL,
    invoices_replaced  BIGINT       NOT NULL,
    lines_inserted     BIGINT       NOT NULL,
    lines_updated      BIGINT       NOT NULL,
    lines_deleted      BIGINT       NOT NULL,
    PRIMARY KEY (run_id)
);
