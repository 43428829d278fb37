-- After every view was refreshed: the changing merges the refresh began with.
INSERT INTO shopstream_view_refreshes (refreshed_at, changing_merges) VALUES (GETDATE(), {changing_merges});
