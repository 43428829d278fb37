-- The record of applied migrations. Redshift has no CREATE MATERIALIZED VIEW IF NOT
-- EXISTS (nor CREATE OR REPLACE for tables), so every migration runs exactly once, by
-- version, in one transaction with the row that records it here.
CREATE TABLE IF NOT EXISTS shopstream_migrations (
    version     INTEGER       NOT NULL,
    name        VARCHAR(200)  NOT NULL,
    applied_at  TIMESTAMP     NOT NULL,
    PRIMARY KEY (version)
);
