-- Asked before a merge: with nothing staged the merge is skipped (a Redshift commit is not free).
SELECT COUNT(*) AS staged_rows FROM stg_invoice_lines;
