-- When the materialized views were last refreshed, counted in merges that changed the
-- fact: the loader refreshes only when a changing merge happened since (each refresh
-- recomputes a view in full, and a schedule that runs while nothing arrives should not
-- pay for it). changing_merges is how many rows of shopstream_merge_runs had changed
-- something when that refresh began, so a merge committed during a refresh is seen as
-- still to refresh.
CREATE TABLE shopstream_view_refreshes (
    refreshed_at     TIMESTAMP NOT NULL,
    changing_merges  BIGINT    NOT NULL
);
