-- Appended to a migration's own batch, so a migration is recorded if and only if it committed.
INSERT INTO shopstream_migrations (version, name, applied_at) VALUES ({version}, '{name}', GETDATE());
