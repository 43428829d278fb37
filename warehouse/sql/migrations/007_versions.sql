-- Versions of a transaction (sources that carry a status, pipeline/events.py "Versions"):
-- the event's status, and its version as sortable text ('<invoice_date>/<status rank>';
-- '' for an event without a status). The merge orders deliveries of an invoice by
-- (source_version, source_sequence), so the newest version wins whatever order the
-- versions arrive in, and status-less events ('' everywhere) keep the delivery order.
-- Redshift adds one column per ALTER TABLE; a NOT NULL column needs its DEFAULT, which
-- is also what every row loaded before this migration gets (no status, no version).
ALTER TABLE stg_invoice_lines ADD COLUMN status VARCHAR(16);

ALTER TABLE stg_invoice_lines ADD COLUMN source_version VARCHAR(32) DEFAULT '' NOT NULL;

ALTER TABLE fact_invoice_lines ADD COLUMN status VARCHAR(16);

ALTER TABLE fact_invoice_lines ADD COLUMN source_version VARCHAR(32) DEFAULT '' NOT NULL;

ALTER TABLE invoice_deliveries ADD COLUMN source_version VARCHAR(32) DEFAULT '' NOT NULL;
