"""The query API function: invoices and a customer's invoice history (HTTP API)."""
