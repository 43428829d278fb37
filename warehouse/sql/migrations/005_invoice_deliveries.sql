-- The latest delivery of each invoice the merge has seen: one row per invoice, raised by
-- every winning delivery, a replay of the content the fact already holds included. The
-- merge compares a staged delivery with this, not with the fact's own source_sequence
-- (which a replay leaves as it was), so the outcome does not depend on how deliveries
-- are batched into merges: an older version arriving after a replay of a newer one is
-- never applied.
CREATE TABLE invoice_deliveries (
    invoice_no       VARCHAR(40)   NOT NULL ENCODE zstd,
    source_sequence  VARCHAR(143)  NOT NULL ENCODE zstd,
    event_id         VARCHAR(32)   NOT NULL ENCODE zstd,
    PRIMARY KEY (invoice_no)
)
DISTSTYLE KEY
DISTKEY (invoice_no)
SORTKEY (invoice_no);

-- A warehouse merged before this table existed: what the fact holds is the latest seen.
INSERT INTO invoice_deliveries (invoice_no, source_sequence, event_id)
SELECT invoice_no, MAX(source_sequence), MAX(event_id)
FROM fact_invoice_lines
GROUP BY invoice_no;
