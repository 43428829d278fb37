-- Merges that changed the fact, and how many of them the last refresh covered.
SELECT
    (SELECT COUNT(*) FROM shopstream_merge_runs
     WHERE invoices_inserted + invoices_replaced + lines_inserted + lines_updated + lines_deleted > 0) AS changing_merges,
    (SELECT COALESCE(MAX(changing_merges), 0) FROM shopstream_view_refreshes) AS refreshed_merges;
