-- The migration versions already applied.
SELECT version FROM shopstream_migrations ORDER BY version;
