"""DynamoDB models (pynamodb) of the invoice path."""
