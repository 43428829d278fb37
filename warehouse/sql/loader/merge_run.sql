-- What the merge run '{run_id}' did (written by merge.sql inside its transaction).
SELECT staged_rows, staged_invoices, invoices_inserted, invoices_replaced, lines_inserted, lines_updated, lines_deleted
FROM shopstream_merge_runs
WHERE run_id = '{run_id}';
