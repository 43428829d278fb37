"""The invoice writer: invoice events from Kinesis into the DynamoDB invoices table."""
