-- Staging: what Firehose COPYs in, exactly warehouse.schema.STAGING_COLUMNS (names,
-- order, types, NOT NULL). Delivery is at least once at every hop and Redshift enforces
-- no keys, so this table may hold the same line several times: the same Kinesis record
-- delivered twice (same source_sequence), a replay (same event_id, later
-- source_sequence) or a changed invoice (new event_id, later source_sequence). The merge
-- (warehouse/sql/merge.sql) resolves them and deletes what it merged.
-- Distributed like the fact, so the merge joins on invoice_no without redistribution.
CREATE TABLE stg_invoice_lines (
    event_id         VARCHAR(32)    NOT NULL,
    invoice_no       VARCHAR(40)    NOT NULL,
    line_no          INTEGER        NOT NULL,
    invoice_date     TIMESTAMP      NOT NULL,
    customer_id      VARCHAR(20),
    country          VARCHAR(2000)  NOT NULL,
    stock_code       VARCHAR(2000)  NOT NULL,
    description      VARCHAR(2000),
    quantity         INTEGER        NOT NULL,
    unit_price       DECIMAL(15,6)  NOT NULL,
    amount           DECIMAL(24,6)  NOT NULL,
    size_class       VARCHAR(6)     NOT NULL,
    is_cancellation  BOOLEAN        NOT NULL,
    is_adjustment    BOOLEAN        NOT NULL,
    is_product       BOOLEAN        NOT NULL,
    source_sequence  VARCHAR(143)   NOT NULL,
    arrived_at       TIMESTAMP      NOT NULL
)
DISTSTYLE KEY
DISTKEY (invoice_no);
