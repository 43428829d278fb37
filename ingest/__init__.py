"""The ingest function: POST /events (API Gateway HTTP API) onto the Kinesis stream."""
