-- The merge: staging -> fact and dimensions, with an exactly-once effect under
-- at-least-once delivery. Sent as ONE BatchExecuteStatement (one transaction, one
-- session, so the temporary tables live exactly as long as the merge). '{run_id}' is
-- filled in by the loader (32 hex digits). The rules (warehouse/sql/README.md):
--   * deliveries are ordered by (source_version, source_sequence): source_version is
--     the event's version ('<invoice_date>/<status rank>' where the source carries a
--     status, '' otherwise), so the newest version of a transaction wins whenever it
--     arrives, and among equal versions (every status-less event: '' = '') the later
--     delivery, as before versions existed;
--   * per invoice, the staged delivery with the greatest (source_version,
--     source_sequence) wins (ties, which only non-Kinesis sources can produce, go to
--     the greatest event_id);
--   * it is applied only if no delivery of the invoice was seen before
--     (invoice_deliveries), or the latest seen has a smaller source_version, or the
--     same source_version, a smaller source_sequence and another event_id: an older
--     version or delivery arriving after a newer one never overwrites it (even with a
--     greater source_sequence), and a replay of the content the fact already holds
--     changes no fact row at all (Redshift's MERGE has no AND condition on WHEN
--     MATCHED, so the source is filtered before the MERGE);
--   * every winner newer (greater (source_version, source_sequence)) than the latest
--     seen becomes the latest seen, replays included, so the outcome does not depend
--     on how deliveries are batched;
--   * a newer version replaces ALL lines of its invoice: lines it no longer has are
--     deleted, the others updated or inserted;
--   * the MERGE source holds one row per (invoice_no, line_no): Redshift rejects
--     several source rows matching one target row and inserts unmatched duplicates
--     twice;
--   * the dimensions are recomputed for the keys the merge touched (before and after)
--     and written only where a value actually changes;
--   * exactly the staging rows captured at the start are deleted, matched on
--     (invoice_no, line_no, source_sequence): rows a concurrent COPY commits meanwhile
--     survive for the next merge, whatever the isolation level.

-- 1. What this merge works on: the staging rows visible now.
CREATE TEMP TABLE merge_snapshot AS
SELECT event_id, invoice_no, line_no, invoice_date, customer_id, country, stock_code, description,
       quantity, unit_price, amount, size_class, is_cancellation, is_adjustment, is_product,
       source_sequence, arrived_at, status, source_version
FROM stg_invoice_lines;

-- 2. The winning delivery of each staged invoice.
CREATE TEMP TABLE merge_winner AS
SELECT invoice_no, source_version, source_sequence, event_id
FROM (
    SELECT invoice_no, source_version, source_sequence, event_id,
           ROW_NUMBER() OVER (
               PARTITION BY invoice_no ORDER BY source_version DESC, source_sequence DESC, event_id DESC
           ) AS pick
    FROM (SELECT DISTINCT invoice_no, source_version, source_sequence, event_id FROM merge_snapshot) deliveries
) ranked
WHERE pick = 1;

-- 3. The invoices whose fact lines change: new ones, newer versions, and newer different
--    deliveries of the same version.
CREATE TEMP TABLE merge_apply AS
SELECT w.invoice_no, w.source_sequence, w.event_id, (seen.invoice_no IS NOT NULL) AS replaces
FROM merge_winner w
LEFT JOIN invoice_deliveries seen ON seen.invoice_no = w.invoice_no
WHERE seen.invoice_no IS NULL
   OR w.source_version > seen.source_version
   OR (w.source_version = seen.source_version AND w.source_sequence > seen.source_sequence
       AND w.event_id <> seen.event_id);

-- The winners newer (greater (source_version, source_sequence)) than the latest delivery
-- seen of their invoice.
CREATE TEMP TABLE merge_seen AS
SELECT w.invoice_no, w.source_version, w.source_sequence, w.event_id
FROM merge_winner w
LEFT JOIN invoice_deliveries seen ON seen.invoice_no = w.invoice_no
WHERE seen.invoice_no IS NULL
   OR w.source_version > seen.source_version
   OR (w.source_version = seen.source_version AND w.source_sequence > seen.source_sequence);

-- 4. The MERGE source: the winning deliveries' lines, one row per line.
CREATE TEMP TABLE merge_source AS
SELECT invoice_no, line_no, invoice_date, customer_id, country, stock_code, description,
       quantity, unit_price, amount, size_class, is_cancellation, is_adjustment, is_product,
       event_id, source_sequence, arrived_at, status, source_version
FROM (
    SELECT s.*,
           ROW_NUMBER() OVER (PARTITION BY s.invoice_no, s.line_no ORDER BY s.arrived_at DESC) AS pick
    FROM merge_snapshot s
    JOIN merge_apply a
      ON a.invoice_no = s.invoice_no AND a.source_sequence = s.source_sequence AND a.event_id = s.event_id
) delivered
WHERE pick = 1;

-- 5. Lines of replaced invoices that their new version no longer has.
CREATE TEMP TABLE merge_stale AS
SELECT f.invoice_no, f.line_no
FROM fact_invoice_lines f
JOIN merge_apply a ON a.invoice_no = f.invoice_no
LEFT JOIN merge_source s ON s.invoice_no = f.invoice_no AND s.line_no = f.line_no
WHERE a.replaces AND s.invoice_no IS NULL;

-- 6. The dimension keys this merge touches: the new lines' and the replaced lines'.
CREATE TEMP TABLE merge_touched AS
SELECT stock_code, customer_id, CAST(invoice_date AS DATE) AS day
FROM merge_source
UNION
SELECT f.stock_code, f.customer_id, CAST(f.invoice_date AS DATE) AS day
FROM fact_invoice_lines f
JOIN merge_apply a ON a.invoice_no = f.invoice_no
WHERE a.replaces;

-- 7. The record of this run, counted before the fact changes.
INSERT INTO shopstream_merge_runs (run_id, merged_at, staged_rows, staged_invoices, invoices_inserted,
                                   invoices_replaced, lines_inserted, lines_updated, lines_deleted)
SELECT '{run_id}', GETDATE(), staged.rows_seen, staged.invoices_seen, applied.inserted, applied.replaced,
       written.inserted, written.updated, stale.deleted
FROM (SELECT COUNT(*) AS rows_seen, COUNT(DISTINCT invoice_no) AS invoices_seen FROM merge_snapshot) staged
CROSS JOIN (
    SELECT COALESCE(SUM(CASE WHEN replaces THEN 0 ELSE 1 END), 0) AS inserted,
           COALESCE(SUM(CASE WHEN replaces THEN 1 ELSE 0 END), 0) AS replaced
    FROM merge_apply
) applied
CROSS JOIN (
    SELECT COALESCE(SUM(CASE WHEN f.invoice_no IS NULL THEN 1 ELSE 0 END), 0) AS inserted,
           COALESCE(SUM(CASE WHEN f.invoice_no IS NULL THEN 0 ELSE 1 END), 0) AS updated
    FROM merge_source s
    LEFT JOIN fact_invoice_lines f ON f.invoice_no = s.invoice_no AND f.line_no = s.line_no
) written
CROSS JOIN (SELECT COUNT(*) AS deleted FROM merge_stale) stale;

-- 8. The fact: drop the stale lines, then upsert the new versions' lines.
DELETE FROM fact_invoice_lines
USING merge_stale
WHERE fact_invoice_lines.invoice_no = merge_stale.invoice_no
  AND fact_invoice_lines.line_no = merge_stale.line_no;

MERGE INTO fact_invoice_lines
USING merge_source
ON fact_invoice_lines.invoice_no = merge_source.invoice_no AND fact_invoice_lines.line_no = merge_source.line_no
WHEN MATCHED THEN UPDATE SET
    invoice_date = merge_source.invoice_date,
    customer_id = merge_source.customer_id,
    country = merge_source.country,
    stock_code = merge_source.stock_code,
    description = merge_source.description,
    quantity = merge_source.quantity,
    unit_price = merge_source.unit_price,
    amount = merge_source.amount,
    size_class = merge_source.size_class,
    is_cancellation = merge_source.is_cancellation,
    is_adjustment = merge_source.is_adjustment,
    is_product = merge_source.is_product,
    event_id = merge_source.event_id,
    source_sequence = merge_source.source_sequence,
    arrived_at = merge_source.arrived_at,
    status = merge_source.status,
    source_version = merge_source.source_version,
    merged_at = GETDATE()
WHEN NOT MATCHED THEN INSERT (invoice_no, line_no, invoice_date, customer_id, country, stock_code, description,
                              quantity, unit_price, amount, size_class, is_cancellation, is_adjustment, is_product,
                              event_id, source_sequence, arrived_at, status, source_version, merged_at)
VALUES (merge_source.invoice_no, merge_source.line_no, merge_source.invoice_date, merge_source.customer_id,
        merge_source.country, merge_source.stock_code, merge_source.description, merge_source.quantity,
        merge_source.unit_price, merge_source.amount, merge_source.size_class, merge_source.is_cancellation,
        merge_source.is_adjustment, merge_source.is_product, merge_source.event_id, merge_source.source_sequence,
        merge_source.arrived_at, merge_source.status, merge_source.source_version, GETDATE());

MERGE INTO invoice_deliveries
USING merge_seen
ON invoice_deliveries.invoice_no = merge_seen.invoice_no
WHEN MATCHED THEN UPDATE SET
    source_version = merge_seen.source_version,
    source_sequence = merge_seen.source_sequence,
    event_id = merge_seen.event_id
WHEN NOT MATCHED THEN INSERT (invoice_no, source_version, source_sequence, event_id)
VALUES (merge_seen.invoice_no, merge_seen.source_version, merge_seen.source_sequence, merge_seen.event_id);

-- 9. dim_products: the touched codes' current values, kept only where they differ.
CREATE TEMP TABLE merge_products AS
SELECT c.stock_code, c.description, c.unit_price, c.is_product, c.first_invoice_date, c.last_invoice_date
FROM (
    SELECT stock_code, description, unit_price, is_product, first_invoice_date, last_invoice_date
    FROM (
        SELECT f.stock_code, f.description, f.unit_price, f.is_product,
               MIN(f.invoice_date) OVER (PARTITION BY f.stock_code) AS first_invoice_date,
               MAX(f.invoice_date) OVER (PARTITION BY f.stock_code) AS last_invoice_date,
               ROW_NUMBER() OVER (
                   PARTITION BY f.stock_code
                   ORDER BY CASE WHEN NOT f.is_cancellation AND NOT f.is_adjustment AND f.description IS NOT NULL
                                      AND f.unit_price > 0
                                 THEN 0 ELSE 1 END,
                            f.invoice_date DESC, f.invoice_no DESC, f.line_no DESC
               ) AS pick
        FROM fact_invoice_lines f
        JOIN (SELECT DISTINCT stock_code FROM merge_touched) t ON t.stock_code = f.stock_code
    ) ranked
    WHERE pick = 1
) c
LEFT JOIN dim_products d ON d.stock_code = c.stock_code
WHERE d.stock_code IS NULL
   OR (d.description <> c.description OR (d.description IS NULL) <> (c.description IS NULL))
   OR (d.unit_price <> c.unit_price OR (d.unit_price IS NULL) <> (c.unit_price IS NULL))
   OR (d.is_product <> c.is_product OR (d.is_product IS NULL) <> (c.is_product IS NULL))
   OR (d.first_invoice_date <> c.first_invoice_date OR (d.first_invoice_date IS NULL) <> (c.first_invoice_date IS NULL))
   OR (d.last_invoice_date <> c.last_invoice_date OR (d.last_invoice_date IS NULL) <> (c.last_invoice_date IS NULL));

MERGE INTO dim_products
USING merge_products
ON dim_products.stock_code = merge_products.stock_code
WHEN MATCHED THEN UPDATE SET
    description = merge_products.description,
    unit_price = merge_products.unit_price,
    is_product = merge_products.is_product,
    first_invoice_date = merge_products.first_invoice_date,
    last_invoice_date = merge_products.last_invoice_date
WHEN NOT MATCHED THEN INSERT (stock_code, description, unit_price, is_product, first_invoice_date, last_invoice_date)
VALUES (merge_products.stock_code, merge_products.description, merge_products.unit_price, merge_products.is_product,
        merge_products.first_invoice_date, merge_products.last_invoice_date);

-- Touched codes the fact no longer has any line of.
CREATE TEMP TABLE merge_products_gone AS
SELECT t.stock_code
FROM (SELECT DISTINCT stock_code FROM merge_touched) t
LEFT JOIN (
    SELECT DISTINCT f.stock_code
    FROM fact_invoice_lines f
    JOIN (SELECT DISTINCT stock_code FROM merge_touched) ft ON ft.stock_code = f.stock_code
) present ON present.stock_code = t.stock_code
WHERE present.stock_code IS NULL;

DELETE FROM dim_products
USING merge_products_gone
WHERE dim_products.stock_code = merge_products_gone.stock_code;

-- 10. dim_customers, the same way.
CREATE TEMP TABLE merge_customers AS
SELECT c.customer_id, c.country, c.first_order, c.last_order
FROM (
    SELECT customer_id, country, first_order, last_order
    FROM (
        SELECT f.customer_id, f.country,
               MIN(CASE WHEN NOT f.is_cancellation AND NOT f.is_adjustment THEN f.invoice_date END)
                   OVER (PARTITION BY f.customer_id) AS first_order,
               MAX(CASE WHEN NOT f.is_cancellation AND NOT f.is_adjustment THEN f.invoice_date END)
                   OVER (PARTITION BY f.customer_id) AS last_order,
               ROW_NUMBER() OVER (
                   PARTITION BY f.customer_id ORDER BY f.invoice_date DESC, f.invoice_no DESC, f.line_no DESC
               ) AS pick
        FROM fact_invoice_lines f
        JOIN (SELECT DISTINCT customer_id FROM merge_touched WHERE customer_id IS NOT NULL) t
          ON t.customer_id = f.customer_id
    ) ranked
    WHERE pick = 1
) c
LEFT JOIN dim_customers d ON d.customer_id = c.customer_id
WHERE d.customer_id IS NULL
   OR (d.country <> c.country OR (d.country IS NULL) <> (c.country IS NULL))
   OR (d.first_order <> c.first_order OR (d.first_order IS NULL) <> (c.first_order IS NULL))
   OR (d.last_order <> c.last_order OR (d.last_order IS NULL) <> (c.last_order IS NULL));

MERGE INTO dim_customers
USING merge_customers
ON dim_customers.customer_id = merge_customers.customer_id
WHEN MATCHED THEN UPDATE SET
    country = merge_customers.country,
    first_order = merge_customers.first_order,
    last_order = merge_customers.last_order
WHEN NOT MATCHED THEN INSERT (customer_id, country, first_order, last_order)
VALUES (merge_customers.customer_id, merge_customers.country, merge_customers.first_order, merge_customers.last_order);

CREATE TEMP TABLE merge_customers_gone AS
SELECT t.customer_id
FROM (SELECT DISTINCT customer_id FROM merge_touched WHERE customer_id IS NOT NULL) t
LEFT JOIN (
    SELECT DISTINCT f.customer_id
    FROM fact_invoice_lines f
    JOIN (SELECT DISTINCT customer_id FROM merge_touched WHERE customer_id IS NOT NULL) ft
      ON ft.customer_id = f.customer_id
) present ON present.customer_id = t.customer_id
WHERE present.customer_id IS NULL;

DELETE FROM dim_customers
USING merge_customers_gone
WHERE dim_customers.customer_id = merge_customers_gone.customer_id;

-- 11. dim_date: the new lines' dates it lacks, and touched dates no line has any more.
INSERT INTO dim_date (calendar_date, year, quarter, month, month_name, day_of_month, day_of_week, day_name,
                      iso_week, is_weekend)
SELECT n.calendar_date,
       CAST(EXTRACT(YEAR FROM n.calendar_date) AS SMALLINT),
       CAST(EXTRACT(QUARTER FROM n.calendar_date) AS SMALLINT),
       CAST(EXTRACT(MONTH FROM n.calendar_date) AS SMALLINT),
       CASE CAST(EXTRACT(MONTH FROM n.calendar_date) AS INTEGER)
           WHEN 1 THEN 'January' WHEN 2 THEN 'February' WHEN 3 THEN 'March' WHEN 4 THEN 'April'
           WHEN 5 THEN 'May' WHEN 6 THEN 'June' WHEN 7 THEN 'July' WHEN 8 THEN 'August'
           WHEN 9 THEN 'September' WHEN 10 THEN 'October' WHEN 11 THEN 'November' ELSE 'December' END,
       CAST(EXTRACT(DAY FROM n.calendar_date) AS SMALLINT),
       CAST(DATE_PART(dow, n.calendar_date) AS SMALLINT),
       CASE CAST(DATE_PART(dow, n.calendar_date) AS INTEGER)
           WHEN 0 THEN 'Sunday' WHEN 1 THEN 'Monday' WHEN 2 THEN 'Tuesday' WHEN 3 THEN 'Wednesday'
           WHEN 4 THEN 'Thursday' WHEN 5 THEN 'Friday' ELSE 'Saturday' END,
       CAST(EXTRACT(WEEK FROM n.calendar_date) AS SMALLINT),
       CAST(DATE_PART(dow, n.calendar_date) AS INTEGER) IN (0, 6)
FROM (SELECT DISTINCT CAST(invoice_date AS DATE) AS calendar_date FROM merge_source) n
LEFT JOIN dim_date d ON d.calendar_date = n.calendar_date
WHERE d.calendar_date IS NULL;

CREATE TEMP TABLE merge_days_gone AS
SELECT t.day
FROM (SELECT DISTINCT day FROM merge_touched) t
LEFT JOIN (
    SELECT DISTINCT CAST(f.invoice_date AS DATE) AS day
    FROM fact_invoice_lines f
    JOIN (SELECT DISTINCT day FROM merge_touched) ft ON ft.day = CAST(f.invoice_date AS DATE)
) present ON present.day = t.day
WHERE present.day IS NULL;

DELETE FROM dim_date
USING merge_days_gone
WHERE dim_date.calendar_date = merge_days_gone.day;

-- 12. Exactly the staging rows this merge captured.
DELETE FROM stg_invoice_lines
USING merge_snapshot
WHERE stg_invoice_lines.invoice_no = merge_snapshot.invoice_no
  AND stg_invoice_lines.line_no = merge_snapshot.line_no
  AND stg_invoice_lines.source_sequence = merge_snapshot.source_sequence;
