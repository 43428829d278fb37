"""Fan-out consumers of the invoice event stream (one Lambda package each)."""
